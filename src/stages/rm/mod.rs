//! `rlhf rm`: the reward model on K-wise rankings (InstructGPT eq. 1).
//!
//! As in the paper, all C(K,2) pairs of a prompt belong to ONE batch and each response runs
//! through the model once per step: a batch of P prompts is Σ K_p sequences in one forward,
//! and the loss `−1/C(K,2) Σ_pairs log σ(r_w − r_l)`, averaged over prompts, is computed from
//! those Σ K_p rewards by the ranking-loss kernel (`src/kernels/ranking_loss`: WGSL on wgpu,
//! its burn-ops twin on the CPU). After training, the rewards are scaled and shifted so that
//! the normalisation responses score 0 on average with standard deviation 1 (`norm`).
//!
//! Parts: `job` (what is asked, what is reported), `setup` (data and starting model), `train`
//! (the stage the trainer drives), `step` (one step's loss and gradient), `stats` (ranking
//! statistics), `norm` (the gain and bias).

mod job;
mod norm;
mod setup;
mod stats;
mod step;
mod train;

pub use job::{RmJob, RmSummary, DEFAULT_DROPOUT};
pub use norm::{norm_subset, Normalisation, DEFAULT_NORM_MAX};
pub use stats::{pair_counts, rank_stats, RankStats};
pub use train::RmRow;

use crate::checkpoint::{self, CheckpointConfig, CheckpointKind};
use crate::eval::interval::ratio_interval;
use crate::model::RewardModel;
use crate::train::optim::stage_optimizer;
use crate::train::run::StageRun;
use crate::train::trained::Trained;
use crate::train::trainer::{Cadence, Stage, Trainer};
use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use train::RmTrain;

pub fn run(job: RmJob, device: &Device) -> Result<RmSummary> {
    let run = StageRun::begin(&job.out);
    let data = setup::prepare(&job, device)?;
    run.create_dir()?;
    let cfg = &job.train;
    let begun = run.start(
        (job.resume, cfg.seed),
        stage_optimizer(cfg),
        || Ok((data.init_model(cfg.seed, device)?, None)),
        |dir| resumed_model(dir, &data, device),
    )?;
    // A finished checkpoint that is already normalised stays as it is (normalising it again
    // would scale an already scaled head). One without a gain (saved before the scale was
    // normalised, or the last step's checkpoint of a run killed before its final save) is
    // normalised at the end, as a finished run is.
    let done = begun.extra.filter(|_| begun.start.state.finished);
    run.save_settings(&job.train)?;
    let mut stage = RmTrain {
        job: &job,
        groups: &data.groups,
        val: &data.val,
        tok: &data.tok,
        // raw until the last save normalises it (`train`)
        ckpt_cfg: CheckpointConfig {
            kind: CheckpointKind::Rm,
            stage: "rm".into(),
            model: data.mcfg.clone(),
            reward_bias: None,
            reward_gain: None,
            lora: data.lora.clone(),
        },
        // dropout only in the training copy: the saved config keeps 0 (a reward must not
        // depend on a dropout mask), and evaluation scores through `valid()`, which has none
        net: Trained::new(
            begun.model.with_dropout(job.dropout).train(),
            begun.optim,
            cfg,
        ),
        device,
        ad: device.clone().autodiff(),
        seqs: 0,
        norm: done,
        heldout_pairs: Vec::new(),
    };
    let trainer = Trainer {
        name: "rm",
        unit: "step",
        out: &job.out,
        cadence: Cadence::of(cfg),
    };
    let fin = trainer.run(&mut stage, begun.start)?;
    if stage.norm.is_none() {
        // resumed after the last step from a raw checkpoint: normalise and save, as a
        // finished run does
        stage.save(&fin.state)?;
    }
    let norm = stage.norm.unwrap_or(Normalisation {
        gain: f64::NAN,
        bias: f64::NAN,
    });
    let sequences_per_step = fin.per_step(stage.seqs);
    let summary = RmSummary {
        steps: fin.state.step,
        train_prompts: data.groups.len(),
        heldout_prompts: data.val.len(),
        skipped_records: data.skipped_records,
        first_eval: fin.first_eval.unwrap_or_default(),
        final_eval: fin.last_eval.unwrap_or_default(),
        final_accuracy_interval: ratio_interval(&stage.heldout_pairs),
        reward_bias: norm.bias,
        reward_gain: norm.gain,
        skipped_steps: fin.skipped,
        sequences_per_step,
        seconds: run.seconds(),
        fused_kernels: run.launches(),
    };
    run.finish(&summary)?;
    Ok(summary)
}

/// The reward model of the checkpoint a run resumes from, checked against the run, and its
/// normalisation when it has one.
fn resumed_model(
    dir: &std::path::Path,
    data: &setup::Prepared,
    device: &Device,
) -> Result<(RewardModel, Option<Normalisation>)> {
    let loaded = checkpoint::load_rm(dir, device)?;
    checkpoint::check_resumable(
        dir,
        (&loaded.config.model, &loaded.tok),
        (&data.mcfg, &data.tok),
    )?;
    let norm = match (loaded.config.reward_gain, loaded.config.reward_bias) {
        (Some(gain), Some(bias)) => Some(Normalisation { gain, bias }),
        _ => None,
    };
    Ok((loaded.model, norm))
}
