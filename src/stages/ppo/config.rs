//! PPO settings, saved as `stage.json` in the PPO directory. `PpoConfig::default()` holds
//! `rlhf ppo`'s defaults, the settings tuned on the default job, with the score cap, EOS
//! penalty and β in units of a normalised RM's sd; [`PpoDefaults`] names the pipeline's two
//! jobs: the default job (those defaults) and the tiny job (a quick check for tests).

use crate::rl::KlController;
use serde::{Deserialize, Serialize};

/// The policy-gradient method of `rlhf ppo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Algo {
    /// PPO (InstructGPT): one response per prompt, a value model trained beside the policy,
    /// per-token KL rewards and GAE advantages.
    #[default]
    Ppo,
    /// RLOO (Ahmadian et al. 2024): `rloo_k` responses per prompt, the baseline of each the
    /// mean return of the others; no value model. The same KL penalty (summed over the
    /// response), clipped surrogate, ptx and resume as PPO.
    Rloo,
}

/// Which PPO settings a pipeline job starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PpoDefaults {
    /// The `tiny` preset's job: a quick check that runs in seconds (tests).
    Tiny,
    /// `rlhf ppo`'s defaults, tuned on the default job (`small`), for every other preset
    /// (`base`, `gpt2`, a preset file): their cap and β are in RM sd, which every RM shares.
    Tuned,
}

impl PpoDefaults {
    /// The job of a model preset, by the name given to `--preset`.
    pub fn of_preset(preset: &str) -> Self {
        match preset {
            "tiny" => Self::Tiny,
            _ => Self::Tuned,
        }
    }
}

/// Everything that shapes a PPO run. Token counts are per response; β is per token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PpoConfig {
    /// PPO or RLOO. Default PPO (`serde` default: runs saved before RLOO existed are PPO).
    #[serde(default)]
    pub algo: Algo,
    /// RLOO: responses sampled per prompt, ≥ 2, dividing `rollout_batch` (each iteration answers
    /// `rollout_batch / rloo_k` prompts `rloo_k` times). Unused by PPO. Default 4.
    #[serde(default = "default_rloo_k")]
    pub rloo_k: usize,
    /// PPO iterations; each samples `rollout_batch` episodes and trains on them. Default 80.
    pub steps: usize,
    /// Prompts (one response each) sampled per iteration. Default 64.
    pub rollout_batch: usize,
    /// Episodes per gradient step. Default 32.
    pub minibatch: usize,
    /// Passes over each rollout batch. Default 2.
    pub ppo_epochs: usize,
    /// Policy learning rate (AdamW, constant after warmup). Default 1e-4 (at 60 iterations of
    /// 32 episodes, 3e-5 moved the default job's policy half as far as 6e-5: win rate 0.65
    /// against 0.89).
    pub policy_lr: f64,
    /// Value-model learning rate. Default 1e-4.
    pub value_lr: f64,
    /// Linear warmup iterations for both learning rates. Default 2.
    pub warmup: usize,
    /// Adam β2 (InstructGPT: 0.95). Default 0.95.
    pub beta2: f64,
    /// Clip each model's gradients to this global L2 norm (0 disables). Default 1.0.
    pub grad_clip: f64,
    /// PPO ratio clip ε. Default 0.2.
    pub clip_eps: f32,
    /// Value clip: new values stay within this distance of the rollout's (in RM sd). Default 0.1.
    pub value_clip: f32,
    /// GAE discount γ. Default 1.0 (the paper's).
    pub gamma: f32,
    /// GAE λ. Default 0.95.
    pub lambda: f32,
    /// Initial KL coefficient β in `r = r_θ − β·(log π_RL − log π_SFT)` (RM sd per nat).
    /// Default 0.075.
    pub kl_coef: f32,
    /// With a target (nats per response), β adapts towards it (Ziegler et al. 2019). Default none.
    pub kl_target: Option<f32>,
    /// Adaptive-KL horizon in episodes. Default 10,000.
    pub kl_horizon: usize,
    /// Pretraining-mix coefficient γ_ptx; 0 is plain PPO and reads no pretraining data.
    /// Default 0.25 (the paper's 27.8 diverges at this size, as DeepSpeed-Chat also reports).
    pub ptx_coef: f64,
    /// Pretraining windows (of n_ctx tokens) per gradient step when `ptx_coef > 0`. Default 4.
    pub ptx_batch: usize,
    /// Clip RM scores to ±this (in RM sd) before they enter the reward (none: no clipping).
    /// Default 0.9.
    pub reward_clip: Option<f32>,
    /// Whiten RM scores across each rollout batch (shift kept). Default false.
    pub whiten_rewards: bool,
    /// Subtracted from the score of a response cut at `max_new_tokens` (no `<|endoftext|>`);
    /// none: no penalty. Default 0.9 (RM sd).
    #[serde(default)]
    pub missing_eos_penalty: Option<f32>,
    /// Sampling temperature of rollouts, > 0. PPO then trains the tempered policy softmax(l/T):
    /// π_old, π_new and the reference's log-probs (so the KL) are all computed at T, as the
    /// actions were drawn at T (otherwise the update would be off-policy). Default 1.0.
    pub temperature: f32,
    /// Maximum response tokens per episode. Default 48.
    pub max_new_tokens: usize,
    /// Write a resumable checkpoint every this many iterations (and at the end). Default 10.
    pub checkpoint_every: usize,
    /// Stop after this many consecutive gradient steps with non-finite losses. Default 8.
    pub max_bad_steps: usize,
    /// Seed for prompt order and sampling. Default 11.
    pub seed: u64,
    /// Recompute each block's activations in the backward instead of keeping them (gradient
    /// checkpointing) in the policy's and the value model's passes. Default off.
    #[serde(default)]
    pub checkpoint_activations: bool,
}

fn default_rloo_k() -> usize {
    4
}

impl Default for PpoConfig {
    /// `rlhf ppo`'s defaults, chosen on the default job, in the units of a normalised reward model
    /// (`rlhf rm` scales its scores to mean 0, sd 1 on the normalisation responses), so they mean
    /// the same on any RM. Why each (the measurements: docs/tuning.md):
    /// - the EOS penalty: a sentiment RM likes long answers; without it every response fills
    ///   max_new_tokens and the KL per response grows with the length;
    /// - the score cap (≈ 0.9 sd): past it, stacking more positive words buys nothing, which
    ///   removes the pull that spent most of the KL;
    /// - 64 episodes per iteration: fewer leave gradient noise that moves the policy away from
    ///   SFT without raising the score;
    /// - γ_ptx 0.25: pulls the policy towards the pretraining text less than 1 does, and still
    ///   lowers the held-out perplexity;
    /// - 80 iterations: the value model starts at the normalised reward, and 60 stop short of
    ///   the win-rate target;
    /// - β 0.075 per RM sd: the bundled conversation prompts are long and the policy moves
    ///   further on them; a smaller β overshoots the KL target, a larger one the win rate.
    fn default() -> Self {
        Self {
            algo: Algo::Ppo,
            rloo_k: default_rloo_k(),
            steps: 80,
            rollout_batch: 64,
            minibatch: 32,
            ppo_epochs: 2,
            policy_lr: 1e-4,
            value_lr: 1e-4,
            warmup: 2,
            beta2: 0.95,
            grad_clip: 1.0,
            clip_eps: 0.2,
            value_clip: 0.1,
            gamma: 1.0,
            lambda: 0.95,
            kl_coef: 0.075,
            kl_target: None,
            kl_horizon: 10_000,
            ptx_coef: 0.25,
            ptx_batch: 4,
            reward_clip: Some(0.9),
            whiten_rewards: false,
            missing_eos_penalty: Some(0.9),
            temperature: 1.0,
            max_new_tokens: 48,
            checkpoint_every: 10,
            max_bad_steps: 8,
            seed: 11,
            checkpoint_activations: false,
        }
    }
}

impl PpoConfig {
    /// The settings of the job of a model preset (see [`PpoDefaults::of_preset`]).
    pub fn for_preset(preset: &str) -> Self {
        Self::for_job(PpoDefaults::of_preset(preset))
    }

    /// The settings of one of the pipeline's jobs.
    pub fn for_job(job: PpoDefaults) -> Self {
        match job {
            PpoDefaults::Tiny => Self {
                // the plain settings of a quick check, sized to run in seconds: 16-token
                // responses rarely end (an EOS penalty would be a constant), a cap would
                // stop the token-count rewards of the tests at under one token, and the tiny
                // models need a larger step (lr, ptx) and a smaller β to move in 12 iterations
                steps: 12,
                rollout_batch: 16,
                minibatch: 8,
                max_new_tokens: 16,
                ptx_batch: 2,
                checkpoint_every: 4,
                policy_lr: 6e-5,
                kl_coef: 0.02,
                ptx_coef: 1.0,
                value_clip: 0.2,
                reward_clip: None,
                missing_eos_penalty: None,
                ..Self::default()
            },
            PpoDefaults::Tuned => Self::default(),
        }
    }

    /// The KL controller these settings describe.
    pub fn kl_controller(&self) -> KlController {
        match self.kl_target {
            Some(t) => KlController::adaptive(self.kl_coef, t, self.kl_horizon),
            None => KlController::fixed(self.kl_coef),
        }
    }

    /// Checks the settings make sense before any work starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.rollout_batch > 0, "rollout batch must be at least 1");
        anyhow::ensure!(
            self.minibatch > 0 && self.minibatch <= self.rollout_batch,
            "minibatch ({}) must be between 1 and the rollout batch ({})",
            self.minibatch,
            self.rollout_batch
        );
        anyhow::ensure!(self.ppo_epochs > 0, "PPO epochs must be at least 1");
        if self.algo == Algo::Rloo {
            anyhow::ensure!(
                self.rloo_k >= 2 && self.rollout_batch.is_multiple_of(self.rloo_k),
                "RLOO needs at least 2 samples per prompt (--rloo-k) dividing the rollout batch \
                 ({} responses), got {}",
                self.rollout_batch,
                self.rloo_k
            );
        }
        anyhow::ensure!(self.max_new_tokens > 0, "max new tokens must be at least 1");
        anyhow::ensure!(
            self.ptx_coef >= 0.0 && self.ptx_coef.is_finite(),
            "ptx coefficient must be ≥ 0"
        );
        anyhow::ensure!(self.kl_coef >= 0.0, "KL coefficient must be ≥ 0");
        anyhow::ensure!(self.kl_horizon > 0, "KL horizon must be at least 1 episode");
        if let Some(p) = self.missing_eos_penalty {
            anyhow::ensure!(
                p.is_finite() && p >= 0.0,
                "missing-EOS penalty must be a finite number ≥ 0, got {p}"
            );
        }
        if let Some(t) = self.kl_target {
            anyhow::ensure!(t > 0.0, "KL target must be > 0 nats, got {t}");
        }
        anyhow::ensure!(self.clip_eps > 0.0, "clip ε must be > 0");
        anyhow::ensure!(
            self.temperature.is_finite() && self.temperature > 0.0,
            "temperature must be a finite number > 0 (PPO samples its rollouts from the policy; \
             greedy decoding, temperature 0, has no log-probabilities to train), got {}",
            self.temperature
        );
        if let Some(c) = self.reward_clip {
            anyhow::ensure!(
                c.is_finite() && c > 0.0,
                "reward clip must be a finite number > 0 (scores are clipped to ±clip), got {c}"
            );
        }
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.gamma) && (0.0..=1.0).contains(&self.lambda),
            "γ and λ must lie in [0, 1]"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_refuses_what_would_panic_or_train_off_policy() {
        assert!(PpoConfig::default().validate().is_ok());
        let with = |f: fn(&mut PpoConfig)| {
            let mut c = PpoConfig::default();
            f(&mut c);
            c.validate().map_err(|e| e.to_string())
        };
        for bad in [
            with(|c| c.reward_clip = Some(-1.0)),
            with(|c| c.reward_clip = Some(f32::NAN)),
            with(|c| c.reward_clip = Some(0.0)),
        ] {
            assert!(bad.unwrap_err().contains("reward clip"));
        }
        assert!(with(|c| c.reward_clip = Some(2.0)).is_ok());
        for bad in [
            with(|c| c.temperature = 0.0),
            with(|c| c.temperature = -0.5),
            with(|c| c.temperature = f32::INFINITY),
        ] {
            assert!(bad.unwrap_err().contains("temperature"));
        }
        assert!(with(|c| c.temperature = 0.7).is_ok());
        let rloo = |k: usize, batch: usize| with_rloo(k, batch).map_err(|e| e.to_string());
        assert!(rloo(1, 32).unwrap_err().contains("--rloo-k"));
        assert!(rloo(5, 32).unwrap_err().contains("--rloo-k"));
        assert!(rloo(4, 32).is_ok());
        // PPO ignores k
        assert!(with(|c| c.rloo_k = 5).is_ok());
    }

    fn with_rloo(k: usize, batch: usize) -> anyhow::Result<()> {
        PpoConfig {
            algo: Algo::Rloo,
            rloo_k: k,
            rollout_batch: batch,
            minibatch: batch.min(16),
            ..PpoConfig::default()
        }
        .validate()
    }
}
