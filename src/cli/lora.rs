//! The memory flags of the training stages: LoRA (`--lora-rank` …, every stage) and
//! `--checkpoint-activations` (the stages that recompute).

use crate::config::lora::{LoraConfig, LoraTarget};
use clap::Args;

#[derive(Args, Debug, Clone, Default)]
pub struct LoraArgs {
    /// Train LoRA adapters of this rank instead of every weight: the model's weights stay frozen
    /// (no gradient, no optimizer state) and checkpoints hold the adapters only, with the base
    /// model's path and hash. A LoRA checkpoint given as the starting model trains its own
    /// adapters on without this flag. Default: off (every weight trains).
    #[arg(long)]
    pub lora_rank: Option<usize>,
    /// LoRA α: the update is scaled by α / rank. Default: twice the rank.
    #[arg(long, requires = "lora_rank")]
    pub lora_alpha: Option<f64>,
    /// The layers that carry adapters, in every block: q, k, v, o, gate, up, down (GPT-2: q, k
    /// or v adapt its fused c_attn; up its c_fc; it has no gate). Default: q,k,v,o.
    #[arg(long, requires = "lora_rank", value_enum, value_delimiter = ',')]
    pub lora_targets: Vec<LoraTarget>,
    /// Dropout on each adapter's input while training. Default: 0.
    #[arg(long, requires = "lora_rank")]
    pub lora_dropout: Option<f64>,
}

impl LoraArgs {
    /// The adapters asked for; None without `--lora-rank`.
    pub fn config(&self) -> Option<LoraConfig> {
        let rank = self.lora_rank?;
        let d = LoraConfig::default();
        Some(LoraConfig {
            rank,
            alpha: self.lora_alpha.unwrap_or(2.0 * rank as f64),
            dropout: self.lora_dropout.unwrap_or(d.dropout),
            targets: if self.lora_targets.is_empty() {
                d.targets
            } else {
                let mut t = self.lora_targets.clone();
                t.sort();
                t.dedup();
                t
            },
        })
    }
}

/// Gradient checkpointing, for `pretrain`, `sft`, `ppo` and `pipeline` (its SFT and PPO).
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct RecomputeArg {
    /// Gradient checkpointing: keep only each block's input from the forward and recompute the
    /// block in the backward: less memory for one more forward's work (SmolLM2-135M on the CPU:
    /// PPO 0.33× the memory for 1.22× the time of LoRA alone, SFT 0.48× for 1.11×; docs/lora.md).
    /// Needs dropout 0.
    #[arg(long)]
    pub checkpoint_activations: bool,
}
