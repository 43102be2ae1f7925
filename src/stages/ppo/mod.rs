//! `rlhf ppo`: PPO-ptx (InstructGPT eq. 2), or RLOO with `--algo rloo` (k responses per prompt,
//! each one's baseline the others' mean return, no value model). PPO has four models: the policy
//! (from SFT, trained), the reference (a frozen copy of SFT), the value model (from the RM,
//! trained) and the reward model (frozen). Each iteration samples one response per prompt for a
//! batch of prompts, scores it, turns score and per-token KL into rewards, computes GAE
//! advantages and trains both models for a few epochs of minibatches, mixing in pretraining
//! batches when `ptx_coef > 0`.
//!
//! The checkpoint (`ckpt/`) is the policy, a language model every other command reads, with the
//! value model and its optimizer in `ckpt/value/`, written in the same atomic commit; the KL
//! controller and RNG ride in `train_state.json`, so `--resume` continues exactly.
//!
//! Parts: `config` (the settings, saved as `stage.json`), `job` (what is asked, what is
//! reported), `setup` (models, data, the checkpoint), `episode` (episodes and their padded
//! grid, rewards and advantages), `rollout` (sampling, log-probs, values, scores), `loss` (the
//! losses on tensors), `learner` (one gradient step of both models), `iteration` (the stage the
//! trainer drives). The scalar math, with hand-checked numbers, is `crate::rl`.

pub mod config;
pub mod episode;
mod iteration;
mod job;
pub mod learner;
pub mod loss;
pub mod rollout;
mod setup;

pub use config::{Algo, PpoConfig, PpoDefaults};
pub use episode::{assign_rewards, assign_rloo, Episode, Grid};
pub use job::{IterStats, PpoJob, PpoSummary, RewardSource};
pub use learner::{Critic, Learner, Minibatch, StepStats};
pub use rollout::{rollout, RolloutModels, Scorer};
pub use setup::initial_value;

use crate::train::run::StageRun;
use crate::train::trainer::{Cadence, Trainer};
use anyhow::Result;
use burn::prelude::*;
use iteration::PpoTrain;

/// Runs (or resumes) PPO.
pub fn run(job: PpoJob, device: &Device) -> Result<PpoSummary> {
    let cfg = &job.cfg;
    cfg.validate()?;
    let run = StageRun::begin(&job.out);
    let fixed = setup::load_fixed(&job, device)?;
    run.create_dir()?;
    let (learner, start, extra) = setup::initial_learner(&run, &job, &fixed, device)?;
    run.save_settings(cfg)?;
    let mut stage = PpoTrain {
        job: &job,
        fixed: &fixed,
        learner: Some(learner),
        extra,
        ptx_read: 0,
        device,
    };
    let trainer = Trainer {
        name: "ppo",
        unit: "iteration",
        out: &job.out,
        cadence: Cadence {
            steps: cfg.steps,
            eval_every: None,
            checkpoint_every: cfg.checkpoint_every,
            max_bad_steps: cfg.max_bad_steps,
        },
    };
    let fin = trainer.run(&mut stage, start)?;
    let last = fin.last_row.unwrap_or_default();
    let summary = PpoSummary {
        steps: fin.state.step,
        episodes: stage.extra.episodes,
        first: fin.first_row.unwrap_or(last),
        last,
        ptx_batches: stage.ptx_read,
        skipped_steps: fin.skipped,
        seconds: run.seconds(),
        fused_kernels: run.launches(),
    };
    run.finish(&summary)?;
    Ok(summary)
}
