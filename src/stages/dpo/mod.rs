//! `rlhf dpo`: Direct Preference Optimization (Rafailov et al. 2023) on the rankings `rlhf rm`
//! reads — the policy is trained on the preferences directly, with no reward model and no
//! sampling: `loss = −log σ(β·[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))])`
//! over every pair (y_w ranked above y_l) of a prompt, averaged over its C(K,2) pairs and then
//! over prompts. As in the reward model, all pairs of a prompt are in ONE batch and each
//! response runs through the policy once per step; the frozen reference's log-probabilities are
//! computed once at setup and cached (`setup`).
//!
//! Parts: `config` (the settings, saved as `stage.json`), `job` (what is asked, what is reported), `setup` (data, models, the reference's
//! cache), `logps` (log-probabilities of sets of rankings without gradients), `loss` (the loss on
//! tensors), `step` (one step's loss and gradient), `train` (the stage the trainer drives).
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
use crate::data::tokenizer::Tok;
use crate::model::Gpt;
use crate::train::optim::{stage_optimizer, stage_schedule};
use crate::train::trainer::{resume_dir, Cadence, Start, Trained, Trainer};
use anyhow::Result;
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use train::DpoTrain;

/// The policy, optimizer and loop state to start from: `init` and a fresh state, or the
/// checkpoint in `--out` with `--resume`.
fn start(
    job: &DpoJob,
    init: Gpt,
    (ckpt_cfg, tok): (&CheckpointConfig, &Tok),
    device: &Device,
) -> Result<(Gpt, ModuleOptimizer, Start)> {
    let cfg = &job.cfg.train;
    let optim = stage_optimizer(cfg);
    let Some(dir) = resume_dir(&job.out, job.resume) else {
        return Ok((init, optim, Start::fresh(cfg.seed)));
    };
    let loaded = checkpoint::load_lm(&dir, device)?;
    checkpoint::check_resumable(
        &dir,
        (&loaded.config.model, &loaded.tok),
        (&ckpt_cfg.model, tok),
    )?;
    let (model, optim, state) = checkpoint::load_resume(&dir, loaded.model, optim)?;
    let resumed = Some(dir);
    Ok((model, optim, Start { state, resumed }))
}

pub fn run(job: DpoJob, device: &Device) -> Result<DpoSummary> {
    job.cfg.validate()?;
    let t0 = std::time::Instant::now();
    let launches = crate::kernels::Launches::now();
    let data = setup::prepare(&job, device)?;
    crate::util::fs::create_out_dir(&job.out)?;
    let ckpt_cfg = CheckpointConfig {
        kind: CheckpointKind::Lm,
        stage: "dpo".into(),
        model: data.mcfg.clone(),
        reward_bias: None,
        reward_gain: None,
    };
    let (model, optim, start) = start(&job, data.init, (&ckpt_cfg, &data.tok), device)?;
    // after the resume checks, as every stage: a refused resume writes nothing
    crate::config::save_json(&job.cfg, &job.out.join("stage.json"))?;
    let mut stage = DpoTrain {
        job: &job,
        groups: &data.groups,
        val: &data.val,
        tok: &data.tok,
        ckpt_cfg,
        net: Trained::new(model.train(), optim),
        sched: stage_schedule(&job.cfg.train),
        device,
        ad: device.clone().autodiff(),
        seqs: 0,
    };
    let trainer = Trainer {
        name: "dpo",
        unit: "step",
        out: &job.out,
        cadence: Cadence::of(&job.cfg.train),
    };
    let fin = trainer.run(&mut stage, start)?;
    let loss = |r: &Option<DpoRow>| r.as_ref().map_or(f64::NAN, |r| r.train.loss);
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
        sequences_per_step: if fin.steps_run > 0 {
            stage.seqs as f64 / fin.steps_run as f64
        } else {
            f64::NAN
        },
        seconds: t0.elapsed().as_secs_f64(),
        fused_kernels: crate::kernels::Launches::since(launches),
    };
    crate::config::save_json(&summary, &job.out.join("summary.json"))?;
    Ok(summary)
}
