//! `rlhf dpo`: Direct Preference Optimization (Rafailov et al. 2023) on the rankings `rlhf rm`
//! reads — the policy is trained on the preferences directly, with no reward model and no
//! sampling: `loss = −log σ(β·[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))])`
//! over every pair (y_w ranked above y_l) of a prompt, averaged over its C(K,2) pairs and then
//! over prompts. As in the reward model, all pairs of a prompt are in ONE batch and each
//! response runs through the policy once per step; the frozen reference's log-probabilities are
//! computed once at setup and cached (`setup`).
//!
//! Parts: `config` (the settings, saved as `stage.json`), `job` (what is asked, what is
//! reported), `setup` (data, models, the reference's cache), `logps` (log-probabilities of sets
//! of rankings without gradients), `loss` (the loss on tensors), `step` (one step's loss and
//! gradient), `train` (the stage the trainer drives).
//! The pure math, with hand-checked numbers, is `rl::dpo`.

pub mod config;
mod job;
mod logps;
mod loss;
mod setup;
mod step;
mod train;

pub use config::DpoConfig;
pub use job::{DpoJob, DpoSummary};
pub use logps::{host_logprobs, Group};
pub use loss::dpo_loss;
pub use train::DpoRow;

use crate::checkpoint::{self, CheckpointConfig, CheckpointKind};
use crate::train::optim::stage_optimizer;
use crate::train::run::StageRun;
use crate::train::trained::Trained;
use crate::train::trainer::{Cadence, Trainer};
use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use train::DpoTrain;

pub fn run(job: DpoJob, device: &Device) -> Result<DpoSummary> {
    job.cfg.validate()?;
    let run = StageRun::begin(&job.out);
    let data = setup::prepare(&job, device)?;
    run.create_dir()?;
    let ckpt_cfg = CheckpointConfig {
        kind: CheckpointKind::Lm,
        stage: "dpo".into(),
        model: data.mcfg.clone(),
        reward_bias: None,
        reward_gain: None,
        lora: data.lora.clone(),
    };
    let cfg = &job.cfg.train;
    let begun = run.start(
        (job.resume, cfg.seed),
        stage_optimizer(cfg),
        || Ok((data.init, ())),
        |dir| {
            let expected = (&ckpt_cfg.model, &data.tok);
            Ok((checkpoint::load_resumable_lm(dir, expected, device)?, ()))
        },
    )?;
    run.save_settings(&job.cfg)?;
    let mut stage = DpoTrain {
        job: &job,
        groups: &data.groups,
        val: &data.val,
        tok: &data.tok,
        ckpt_cfg,
        net: Trained::new(begun.model.train(), begun.optim, cfg),
        device,
        ad: device.clone().autodiff(),
        seqs: 0,
    };
    let trainer = Trainer {
        name: "dpo",
        unit: "step",
        out: &job.out,
        cadence: Cadence::of(cfg),
    };
    let fin = trainer.run(&mut stage, begun.start)?;
    let loss = |r: &Option<DpoRow>| r.as_ref().map_or(f64::NAN, |r| r.train.loss);
    let sequences_per_step = fin.per_step(stage.seqs);
    let summary = DpoSummary {
        steps: fin.state.step,
        beta: job.cfg.beta,
        train_prompts: data.groups.len(),
        heldout_prompts: data.val.len(),
        skipped_records: data.skipped_records,
        first_loss: loss(&fin.first_row),
        last_loss: loss(&fin.last_row),
        first_eval: fin.first_eval.unwrap_or_default(),
        final_eval: fin.last_eval.unwrap_or_default(),
        skipped_steps: fin.skipped,
        sequences_per_step,
        seconds: run.seconds(),
        fused_kernels: run.launches(),
    };
    run.finish(&summary)?;
    Ok(summary)
}
