//! Flags of `rlhf rm`, `rlhf score` and `rlhf label`: the reward model and the rankings it learns
//! from (kept beside `cli.rs` to keep each file short).

use super::{ranges, DeviceArg, LoraArgs, OptimArgs};
use crate::labeler::LabelerKind;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RmArgs {
    /// SFT checkpoint to initialise the trunk from (its unembedding is dropped), or a reward
    /// model to train further on new rankings.
    #[arg(long)]
    pub init: PathBuf,
    /// Rankings: {"prompt","responses":[best,...]} (2 ≤ K ≤ 9), {"prompt","chosen","rejected"},
    /// or Anthropic HH {"chosen","rejected"}; the prompt may be a conversation (an array of
    /// messages, or "messages") ending with the user's turn.
    #[arg(long)]
    pub data: PathBuf,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Fraction of prompts held out (a prompt's pairs never straddle the split).
    #[arg(long, default_value_t = 0.1, value_parser = ranges::fraction)]
    pub val_fraction: f64,
    /// Skip (and count) invalid records instead of stopping at the first.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Samples file whose responses define the reward's scale after training: their scores are
    /// normalised to mean 0 and standard deviation 1, the units of `rlhf ppo`'s score cap, EOS
    /// penalty and β (default: the training responses). InstructGPT used the SFT model's samples.
    #[arg(long)]
    pub norm_samples: Option<PathBuf>,
    /// Score at most this many of those responses for the normalisation: a random one of every
    /// prompt, then a second, and so on (0: all).
    #[arg(long, default_value_t = crate::stages::rm::DEFAULT_NORM_MAX)]
    pub norm_max: usize,
    /// Dropout in the trunk while training (off when scoring). The RM sees each prompt many
    /// times and over-fits its few thousand rankings without it.
    #[arg(
        long,
        default_value_t = crate::stages::rm::DEFAULT_DROPOUT,
        value_parser = ranges::dropout
    )]
    pub dropout: f64,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Optimisation flags (--batch-size counts prompts).
    #[command(flatten)]
    pub optim: OptimArgs,
    #[command(flatten)]
    pub lora: LoraArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Reward-model checkpoint.
    #[arg(long)]
    pub rm: PathBuf,
    /// Samples: {"prompt","responses":[...]} per line.
    #[arg(long)]
    pub data: PathBuf,
    /// Write JSONL here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Args, Debug)]
pub struct LabelArgs {
    /// Samples to rank: {"prompt","responses":[...]} per line (what `rlhf sample` writes).
    #[arg(long)]
    pub samples: PathBuf,
    /// Rankings to write: {"prompt","responses":[best,...]} per line.
    #[arg(long)]
    pub out: PathBuf,
    /// The labeler.
    #[arg(long, value_enum, default_value_t = LabelerKind::Sentiment)]
    pub labeler: LabelerKind,
    /// Bradley–Terry temperature: 0 ranks exactly by sentiment; larger values disagree more.
    #[arg(long, default_value_t = 0.0)]
    pub labeler_noise: f64,
    /// VADER lexicon (default: the bundled assets/vader/vader_lexicon.txt).
    #[arg(long)]
    pub lexicon: Option<PathBuf>,
    /// Seed of the labeler noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write responses tied in sentiment in an arbitrary order instead of keeping only the first
    /// of them (a ranking cannot say "equally good"; a written order would teach the RM a coin
    /// flip). Only matters without noise.
    #[arg(long)]
    pub keep_ties: bool,
}
