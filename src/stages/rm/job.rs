//! What `rlhf rm` is asked to do, and what it reports (`summary.json`).

use super::stats::RankStats;
use crate::config::TrainConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Everything `rlhf rm` needs.
pub struct RmJob {
    /// A language model (the trunk; a fresh head) or a reward model (trained further).
    pub init: PathBuf,
    /// Rankings (`{"prompt", "responses": [best, ...]}` and the other accepted formats).
    pub data: PathBuf,
    pub out: PathBuf,
    pub train: TrainConfig,
    /// Fraction of PROMPTS held out (all of a prompt's pairs stay on one side).
    pub val_fraction: f64,
    pub skip_invalid: bool,
    /// Responses whose mean score is shifted to 0 after training (default: the training responses).
    pub norm_samples: Option<PathBuf>,
    /// Score at most this many of them, one random response per prompt in turn (`norm_subset`);
    /// 0: all.
    pub norm_max: usize,
    /// Trunk dropout while training; scoring and the saved config never use it.
    pub dropout: f64,
    /// Train LoRA adapters of these settings (and the head) instead of every weight; a LoRA
    /// `init` trains its own adapters on without them.
    pub lora: Option<crate::config::lora::LoraConfig>,
    pub resume: bool,
}

/// Default [`RmJob::dropout`]: GPT-2's 0.1.
pub const DEFAULT_DROPOUT: f64 = 0.1;

/// Summary written as `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RmSummary {
    pub steps: usize,
    pub train_prompts: usize,
    pub heldout_prompts: usize,
    pub skipped_records: usize,
    pub first_eval: RankStats,
    pub final_eval: RankStats,
    /// 95% bootstrap interval over held-out prompts of `final_eval.accuracy`
    /// (`crate::eval::interval`); `null` in summaries written before intervals.
    #[serde(default)]
    pub final_accuracy_interval: Option<crate::eval::interval::Interval>,
    /// The normalisation's bias (see `reward_gain`).
    pub reward_bias: f64,
    /// The normalisation's gain, folded into the saved head: `reward = gain · head + bias` has
    /// mean 0 and sd 1 on the normalisation responses (1/gain is the raw scores' sd). NaN in
    /// summaries written before the scale was normalised.
    #[serde(default = "nan")]
    pub reward_gain: f64,
    /// Training steps skipped by the non-finite guard.
    #[serde(default)]
    pub skipped_steps: usize,
    /// Sequences run through the model per training step (= Σ K of a batch: one forward each).
    pub sequences_per_step: f64,
    pub seconds: f64,
    /// Fused kernels this run launched (0 on the CPU backend, where the reference path runs).
    #[serde(default)]
    pub fused_kernels: crate::kernels::Launches,
}

fn nan() -> f64 {
    f64::NAN
}
