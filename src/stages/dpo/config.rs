//! DPO settings (`rlhf dpo`), saved as `stage.json` in the DPO directory. `DpoConfig::default()`
//! holds the command's defaults.

use crate::config::TrainConfig;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Everything that shapes a DPO run (Rafailov et al. 2023).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DpoConfig {
    /// Optimisation settings; `batch_size` counts prompts, each with all its K responses (all
    /// C(K,2) pairs of a prompt in one batch, as the reward model). Defaults: [`DpoConfig::train`].
    pub train: TrainConfig,
    /// β, the strength of the implicit KL constraint: the implicit reward of a response is
    /// `β·(log π(y|x) − log π_ref(y|x))`, in nats of sequence log-probability. Default 0.1 (the
    /// paper's and TRL's).
    pub beta: f64,
    /// Fraction of prompts held out (all of a prompt's pairs on one side). Default 0.1.
    pub val_fraction: f64,
}

impl DpoConfig {
    /// The default optimisation settings: 200 steps of 8 prompts, peak lr 2e-4 after 10 warmup
    /// steps (cosine to 10%), no weight decay, global-norm clip 1.0, held-out evaluation every
    /// 25 steps on at most 16 batches, a checkpoint every 50 steps, seed 47. The lr was measured
    /// on the default job's SFT model and rankings (`small`, β 0.1, 60 steps): held-out loss
    /// 0.685 / 0.673 / 0.681 and accuracy 0.577 / 0.593 / 0.593 at lr 2e-5 / 2e-4 / 1e-3.
    pub fn train() -> TrainConfig {
        TrainConfig {
            steps: 200,
            batch_size: 8,
            lr: 2e-4,
            warmup: 10,
            weight_decay: 0.0,
            eval_every: 25,
            eval_batches: 16,
            checkpoint_every: 50,
            seed: 47,
            ..TrainConfig::pretrain()
        }
    }

    /// Rejects settings the stage cannot run with, naming the flag.
    pub fn validate(&self) -> Result<()> {
        if !(self.beta.is_finite() && self.beta > 0.0) {
            bail!("dpo --beta must be a positive number, got {}", self.beta);
        }
        if !(self.val_fraction > 0.0 && self.val_fraction < 1.0) {
            bail!(
                "dpo --val-fraction must be in (0, 1), got {}",
                self.val_fraction
            );
        }
        if self.train.batch_size == 0 || self.train.steps == 0 {
            bail!("dpo --batch-size and --steps must be positive");
        }
        Ok(())
    }
}

impl Default for DpoConfig {
    fn default() -> Self {
        Self {
            train: Self::train(),
            beta: 0.1,
            val_fraction: 0.1,
        }
    }
}
