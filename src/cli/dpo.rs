//! Flags of `rlhf dpo` (kept beside `cli.rs` to keep each file short).

use super::{DeviceArg, OptimArgs};
use crate::stages::dpo::DpoConfig;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DpoArgs {
    /// SFT checkpoint the policy starts from (a stage directory or its ckpt/).
    #[arg(long)]
    pub init: PathBuf,
    /// The frozen reference π_ref of the implicit reward β·log(π/π_ref) (default: --init). It
    /// must have the policy's tokenizer.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Rankings, as `rlhf rm` reads them: {"prompt","responses":[best,...]} (2 ≤ K ≤ 9),
    /// {"prompt","chosen","rejected"}, or Anthropic HH {"chosen","rejected"}; every pair of a
    /// prompt's ranking is a preference.
    #[arg(long)]
    pub data: PathBuf,
    /// Output directory: stage.json, metrics.csv, summary.json and the policy in ckpt/.
    #[arg(long)]
    pub out: PathBuf,
    /// β: the implicit reward's scale, i.e. how strongly the policy is held to the reference
    /// (larger: closer; the default is the paper's).
    #[arg(long, value_parser = super::ranges::beta)]
    pub beta: Option<f64>,
    /// Fraction of prompts held out (a prompt's pairs never straddle the split).
    #[arg(long, value_parser = super::ranges::fraction)]
    pub val_fraction: Option<f64>,
    /// Skip (and count) invalid records instead of stopping at the first.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Optimisation flags; for DPO --batch-size counts prompts (each with all its responses).
    #[command(flatten)]
    pub optim: OptimArgs,
    #[command(flatten)]
    pub lora: super::LoraArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl DpoArgs {
    /// The DPO settings: the defaults with every given flag applied.
    pub fn config(&self) -> DpoConfig {
        let d = DpoConfig::default();
        DpoConfig {
            train: self.optim.apply(d.train),
            beta: self.beta.unwrap_or(d.beta),
            val_fraction: self.val_fraction.unwrap_or(d.val_fraction),
        }
    }
}
