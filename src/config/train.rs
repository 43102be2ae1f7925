//! The optimisation settings of a training stage (pretrain, SFT, the reward model), saved as
//! `stage.json` in its directory, with each stage's defaults.

use serde::{Deserialize, Serialize};

/// Optimisation settings of a training stage. Defaults are per stage (pretrain / SFT / RM):
/// [`TrainConfig::pretrain`], [`TrainConfig::sft`], [`TrainConfig::rm`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Optimizer steps. Default 600 / 300 / 300.
    pub steps: usize,
    /// Sequences per batch (RM: prompts, each with all its K responses). Default 16 / 16 / 8.
    pub batch_size: usize,
    /// Peak learning rate. Default 2e-3 / 5e-4 / 1e-3.
    pub lr: f64,
    /// Final learning rate of the cosine decay, as a fraction of `lr`. Default 0.1.
    pub min_lr_ratio: f64,
    /// Linear warmup, in steps. Default 40 / 20 / 20.
    pub warmup: usize,
    /// AdamW decoupled weight decay. Default 0.1 / 0 / 0.
    pub weight_decay: f64,
    /// Adam β2 (InstructGPT used 0.95). Default 0.95.
    pub beta2: f64,
    /// Clip gradients to this global L2 norm (0 disables). Default 1.0.
    pub grad_clip: f64,
    /// Evaluate the held-out loss every this many steps (and at the end). Default 100 / 50 / 50.
    pub eval_every: usize,
    /// Held-out batches per evaluation. Default 8 / 8 / 64.
    pub eval_batches: usize,
    /// Write a resumable checkpoint every this many steps (and at the end).
    /// Default 200 / 100 / 100.
    pub checkpoint_every: usize,
    /// Stop after this many consecutive non-finite losses or gradients (each one is skipped).
    /// Default 10.
    pub max_bad_steps: usize,
    /// Seed for initialisation, batch order and dropout. Default 1337 / 2024 / 31.
    pub seed: u64,
    /// Micro-batches each batch is cut into; on the CPU backend they run on parallel threads
    /// (`util::shards`), on a GPU a pretraining, SFT or RM batch runs in one pass. The gradient is
    /// the whole batch's either way, but each micro-batch's rows draw their dropout masks from
    /// its own stream, so this is part of what makes a run reproducible (on either device).
    /// Default 2.
    #[serde(default = "default_micro_batches")]
    pub micro_batches: usize,
    /// Recompute each block's activations in the backward instead of keeping them from the
    /// forward (gradient checkpointing): less memory for one more forward's work. Needs dropout
    /// 0. Default off.
    #[serde(default)]
    pub checkpoint_activations: bool,
}

/// Default [`TrainConfig::micro_batches`]: one per core of a 2-core laptop.
pub fn default_micro_batches() -> usize {
    2
}

impl TrainConfig {
    /// Defaults of the pretraining stage.
    pub fn pretrain() -> Self {
        Self {
            steps: 600,
            batch_size: 16,
            lr: 2e-3,
            min_lr_ratio: 0.1,
            warmup: 40,
            weight_decay: 0.1,
            beta2: 0.95,
            grad_clip: 1.0,
            eval_every: 100,
            eval_batches: 8,
            checkpoint_every: 200,
            max_bad_steps: 10,
            seed: 1337,
            micro_batches: default_micro_batches(),
            checkpoint_activations: false,
        }
    }

    /// Defaults of the SFT stage.
    pub fn sft() -> Self {
        Self {
            steps: 300,
            lr: 5e-4,
            warmup: 20,
            weight_decay: 0.0,
            eval_every: 50,
            checkpoint_every: 100,
            seed: 2024,
            ..Self::pretrain()
        }
    }

    /// Defaults of the reward-model stage (`batch_size` counts prompts).
    pub fn rm() -> Self {
        Self {
            steps: 300,
            batch_size: 8,
            lr: 1e-3,
            warmup: 20,
            weight_decay: 0.0,
            eval_every: 50,
            eval_batches: 64,
            checkpoint_every: 100,
            seed: 31,
            ..Self::pretrain()
        }
    }
}
