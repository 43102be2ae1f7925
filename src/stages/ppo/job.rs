//! What `rlhf ppo` is asked to do (the models, data and settings), and what it reports
//! (`summary.json`).

use super::config::PpoConfig;
use crate::train::metrics::{absent_fields, MetricRow};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where rewards come from.
#[derive(Debug, Clone)]
pub enum RewardSource {
    /// A reward-model checkpoint (`rlhf rm`).
    Model(PathBuf),
    /// Count of a token (given as text that encodes to one token) in the response, times a scale.
    TokenCount { text: String, scale: f32 },
}

/// Everything `rlhf ppo` needs.
pub struct PpoJob {
    /// The policy's start (an SFT checkpoint, or an earlier PPO policy).
    pub policy: PathBuf,
    /// The frozen KL reference; None: the same checkpoint as `policy` (InstructGPT keeps the
    /// SFT model as the reference in every round).
    pub reference: Option<PathBuf>,
    pub reward: RewardSource,
    /// Value-model start (an RM checkpoint). None: the reward model, or with a token-count
    /// reward the policy's trunk with a fresh head.
    pub value_init: Option<PathBuf>,
    /// Prompts (`{"prompt": ...}` per line).
    pub prompts: PathBuf,
    /// Pretraining text files for ptx (read only when `ptx_coef > 0`).
    pub ptx_corpus: Vec<PathBuf>,
    pub out: PathBuf,
    pub cfg: PpoConfig,
    /// Train LoRA adapters of these settings on the policy and the value model instead of every
    /// weight (a LoRA policy or reward model trains its own adapters on without them).
    pub lora: Option<crate::config::lora::LoraConfig>,
    pub resume: bool,
}

/// What a finished (or resumed-and-finished) run reports; saved as `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PpoSummary {
    pub steps: usize,
    pub episodes: usize,
    /// Stats of the first and last iteration run by this invocation.
    pub first: IterStats,
    pub last: IterStats,
    /// Pretraining batches read (0 when `ptx_coef` is 0).
    pub ptx_batches: usize,
    /// Gradient steps skipped for non-finite numbers.
    pub skipped_steps: usize,
    pub seconds: f64,
    /// Fused kernels this run launched (0 on the CPU backend, where the reference path runs).
    #[serde(default)]
    pub fused_kernels: crate::kernels::Launches,
}

/// One iteration's numbers, as written to `metrics.csv`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct IterStats {
    /// Mean RM score of the rollout responses.
    pub rm_score: f64,
    /// Mean KL to the reference, nats per response.
    pub kl: f64,
    /// Mean total reward per response: score − β·KL.
    pub reward: f64,
    pub policy_loss: f64,
    pub value_loss: f64,
    pub ptx_loss: f64,
    pub clip_frac: f64,
    pub entropy: f64,
    pub approx_kl: f64,
    /// Mean response length in tokens (closing token excluded).
    pub response_len: f64,
    /// β used this iteration.
    pub kl_coef: f64,
}

absent_fields!(IterStats {
    rm_score,
    kl,
    reward,
    policy_loss,
    value_loss,
    ptx_loss,
    clip_frac,
    entropy,
    approx_kl,
    response_len,
    kl_coef
});

impl MetricRow for IterStats {
    fn fields(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("ppo/rm_score", self.rm_score),
            ("ppo/kl", self.kl),
            ("ppo/reward", self.reward),
            ("loss/policy", self.policy_loss),
            ("loss/value", self.value_loss),
            ("loss/ptx", self.ptx_loss),
            ("ppo/clip_frac", self.clip_frac),
            ("ppo/entropy", self.entropy),
            ("ppo/approx_kl", self.approx_kl),
            ("ppo/response_len", self.response_len),
            ("ppo/kl_coef", self.kl_coef),
        ]
    }
}
