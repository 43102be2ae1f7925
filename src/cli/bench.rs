//! Subcommands of `rlhf bench` (kept beside `cli.rs` to keep each file short).

use super::DeviceArg;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Train tokens/s and peak memory for a preset on random tokens.
    Train {
        #[arg(long, default_value = "small")]
        preset: String,
        /// Vocabulary size of the random model.
        #[arg(long, default_value_t = 2048)]
        vocab_size: usize,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        /// Timed steps (after 3 warm-up steps).
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Micro-batches per step, as the training stages' `--micro-batches` (CPU: one thread
        /// each). Default 2.
        #[arg(long, default_value_t = 2)]
        micro_batches: usize,
        /// Train LoRA adapters on the frozen random model instead of every weight.
        #[command(flatten)]
        lora: super::LoraArgs,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Fused WGSL attention vs burn's composed attention, forward + backward under autodiff.
    Attention {
        /// Batch size.
        #[arg(long, default_value_t = 8)]
        batch_size: usize,
        /// Attention heads.
        #[arg(long, default_value_t = 4)]
        heads: usize,
        /// Longest sequence length to run among 128, 256, 512, 1024 (keep it low on lavapipe).
        #[arg(long, default_value_t = 1024)]
        max_t: usize,
        /// Timed steps per configuration (after one warm-up step).
        #[arg(long, default_value_t = 3)]
        steps: usize,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Generated tokens/s with and without the KV cache.
    Generate {
        #[arg(long, default_value = "small")]
        preset: String,
        #[arg(long, default_value_t = 2048)]
        vocab_size: usize,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        /// Tokens generated per row.
        #[arg(long, default_value_t = 48)]
        new_tokens: usize,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Reward-model ranking loss (64 prompts × K=9, forward + backward): WGSL kernel vs burn ops.
    RankLoss {
        #[command(flatten)]
        device: DeviceArg,
    },
}
