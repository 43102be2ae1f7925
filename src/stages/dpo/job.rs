//! What `rlhf dpo` is asked to do, and what it reports (`summary.json`).

use super::config::DpoConfig;
use crate::rl::dpo::DpoStats;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Everything `rlhf dpo` needs.
pub struct DpoJob {
    /// The language model the policy starts from (the SFT model).
    pub init: PathBuf,
    /// The frozen reference π_ref (default: `init`). Must share the policy's tokenizer.
    pub reference: Option<PathBuf>,
    /// Rankings (`{"prompt", "responses": [best, ...]}` and the other formats `rlhf rm` reads).
    pub data: PathBuf,
    pub out: PathBuf,
    pub cfg: DpoConfig,
    pub skip_invalid: bool,
    /// Train LoRA adapters of these settings instead of every weight (a LoRA `init` trains
    /// its own adapters on without them).
    pub lora: Option<crate::config::lora::LoraConfig>,
    pub resume: bool,
}

/// Summary written as `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DpoSummary {
    pub steps: usize,
    pub beta: f64,
    pub train_prompts: usize,
    pub heldout_prompts: usize,
    pub skipped_records: usize,
    /// The training loss of the first and last step this invocation ran (NaN if it ran none).
    pub first_loss: f64,
    pub last_loss: f64,
    /// Held-out statistics before the first step of this invocation and after the last: loss,
    /// preference accuracy (implicit reward margin > 0), mean implicit reward margin.
    pub first_eval: DpoStats,
    pub final_eval: DpoStats,
    /// Training steps skipped by the non-finite guard.
    pub skipped_steps: usize,
    /// Sequences run through the policy per training step (= Σ K of a batch: one forward each).
    pub sequences_per_step: f64,
    pub seconds: f64,
    /// Fused kernels this run launched (the ranking loss on wgpu; 0 on the CPU backend, where
    /// the reference twin runs).
    #[serde(default)]
    pub fused_kernels: crate::kernels::Launches,
}
