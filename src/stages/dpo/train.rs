//! The policy's side of the training loop: one DPO step over a batch of prompts, the held-out
//! DPO statistics, and checkpoints (language-model checkpoints: every command that reads a
//! policy reads them).

use super::job::DpoJob;
use super::logps::{host_logprobs, Group};
use super::step::{dpo_step, StepArgs};
use crate::checkpoint::{self, CheckpointConfig, SaveRequest, TrainState};
use crate::data::batching::draw_with_replacement;
use crate::data::pairs::TokPrefs;
use crate::data::tokenizer::Tok;
use crate::model::Lm;
use crate::rl::dpo::{dpo_stats, DpoStats};
use crate::train::metrics::{absent_fields, Absent, MetricRow};
use crate::train::trained::Trained;
use crate::train::trainer::{Stage, StepCtx};
use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use std::path::PathBuf;

/// One row of DPO's `metrics.csv`.
#[derive(Debug, Clone)]
pub struct DpoRow {
    /// The training batch's statistics (its loss is the step's).
    pub train: DpoStats,
    /// Held-out statistics (NaN at steps without an evaluation).
    pub eval: DpoStats,
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

absent_fields!(DpoStats {
    loss,
    accuracy,
    margin,
    reward_best,
    reward_worst
});
absent_fields!(DpoRow {
    train,
    eval,
    lr,
    grad_norm
});

impl MetricRow for DpoRow {
    fn fields(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("loss/train", self.train.loss),
            ("dpo/accuracy_train", self.train.accuracy),
            ("dpo/margin_train", self.train.margin),
            ("loss/eval", self.eval.loss),
            ("dpo/accuracy", self.eval.accuracy),
            ("dpo/margin", self.eval.margin),
            ("dpo/reward_best", self.eval.reward_best),
            ("dpo/reward_worst", self.eval.reward_worst),
            ("lr", self.lr),
            ("grad_norm", self.grad_norm),
        ]
    }
}

/// The policy in training, driven by the trainer.
pub(super) struct DpoTrain<'a> {
    pub job: &'a DpoJob,
    pub groups: &'a [Group],
    pub val: &'a [Group],
    pub tok: &'a Tok,
    pub ckpt_cfg: CheckpointConfig,
    pub net: Trained<Lm>,
    pub device: &'a Device,
    pub ad: Device,
    /// Sequences forwarded by this invocation, for `sequences_per_step`.
    pub seqs: usize,
}

/// The reference's cached log-probabilities of `groups`, prompt-major.
fn ref_logps(groups: &[&Group]) -> Vec<f32> {
    groups
        .iter()
        .flat_map(|g| g.ref_logp.iter().copied())
        .collect()
}

impl Stage for DpoTrain<'_> {
    type Eval = DpoStats;
    type Row = DpoRow;

    fn step(&mut self, step: usize, ctx: &mut StepCtx<'_>) -> Result<DpoRow> {
        let cfg = &self.job.cfg.train;
        let group = draw_with_replacement(self.groups, cfg.batch_size, ctx.rng);
        let model = self.net.model()?;
        let args = StepArgs {
            beta: self.job.cfg.beta,
            micro_batches: cfg.micro_batches,
            pad: self.tok.eot,
            step,
            guard: ctx.guard,
            ad: &self.ad,
        };
        let out = dpo_step(model, &group, &args)?;
        self.seqs += out.rows;
        let train = dpo_stats(&out.logp, &ref_logps(&group), &out.ks, self.job.cfg.beta);
        let (loss, grad_norm) = (out.grads.loss, out.grads.grad_norm);
        let update = self.net.update(step, ctx, out.grads)?;
        Ok(DpoRow {
            // the loss as the step computed it (the statistics recompute it on the host)
            train: DpoStats { loss, ..train },
            eval: DpoStats::absent(),
            lr: update.lr,
            grad_norm,
        })
    }

    fn eval(&mut self) -> Result<DpoStats> {
        let cfg = &self.job.cfg.train;
        let n = self.val.len().min(cfg.eval_batches * cfg.batch_size);
        let val: Vec<&Group> = self.val[..n].iter().collect();
        let prefs: Vec<&TokPrefs> = val.iter().map(|g| &g.prefs).collect();
        let valid = self.net.model()?.valid();
        let lp = host_logprobs(&valid, &prefs, self.tok.eot, cfg.batch_size, self.device)?;
        let ks: Vec<usize> = prefs.iter().map(|p| p.seqs.len()).collect();
        Ok(dpo_stats(&lp, &ref_logps(&val), &ks, self.job.cfg.beta))
    }

    fn with_eval(&self, row: DpoRow, eval: Option<&DpoStats>) -> DpoRow {
        DpoRow {
            eval: eval.copied().unwrap_or_else(DpoStats::absent),
            ..row
        }
    }

    fn message(&self, row: &DpoRow, last_eval: Option<&DpoStats>) -> String {
        format!(
            "loss {:.3} held-out acc {:.3} margin {:+.3}",
            row.train.loss,
            last_eval.map_or(f64::NAN, |e| e.accuracy),
            last_eval.map_or(f64::NAN, |e| e.margin)
        )
    }

    fn save(&mut self, state: &TrainState) -> Result<PathBuf> {
        let model = self.net.model()?.valid();
        checkpoint::save(SaveRequest {
            dir: &self.job.out,
            model: &model,
            config: &self.ckpt_cfg,
            tok: self.tok,
            optim: Some(&self.net.optim),
            state,
        })
    }
}
