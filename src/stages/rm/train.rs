//! The reward model's side of the training loop: one ranking-loss step over a batch of
//! prompts, the held-out ranking statistics, and checkpoints; the last one is normalised
//! (gain folded into the head, bias in its config), once training is done.

use super::job::RmJob;
use super::norm::{normalisation, Normalisation};
use super::stats::{pair_counts, rank_stats, RankStats};
use super::step::rm_step;
use crate::checkpoint::{self, CheckpointConfig, SaveRequest, TrainState};
use crate::data::batching::draw_with_replacement;
use crate::data::pairs::TokRanking;
use crate::data::tokenizer::Tok;
use crate::model::score::score_groups;
use crate::model::RewardModel;
use crate::train::metrics::{absent_fields, Absent, MetricRow};
use crate::train::trained::Trained;
use crate::train::trainer::{Stage, StepCtx};
use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use std::path::PathBuf;

/// One row of the reward model's `metrics.csv`.
#[derive(Debug, Clone)]
pub struct RmRow {
    pub loss_train: f64,
    /// Pairwise accuracy on the training batch.
    pub accuracy_train: f64,
    /// Held-out statistics (NaN at steps without an evaluation).
    pub eval: RankStats,
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

absent_fields!(RankStats {
    loss,
    accuracy,
    margin,
    reward_mean,
    reward_std
});
absent_fields!(RmRow {
    loss_train,
    accuracy_train,
    eval,
    lr,
    grad_norm
});

impl MetricRow for RmRow {
    fn fields(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("loss/train", self.loss_train),
            ("rm/accuracy_train", self.accuracy_train),
            ("loss/eval", self.eval.loss),
            ("rm/accuracy", self.eval.accuracy),
            ("rm/margin", self.eval.margin),
            ("rm/reward_mean", self.eval.reward_mean),
            ("rm/reward_std", self.eval.reward_std),
            ("lr", self.lr),
            ("grad_norm", self.grad_norm),
        ]
    }
}

/// The reward model in training, driven by the trainer.
pub(super) struct RmTrain<'a> {
    pub job: &'a RmJob,
    pub groups: &'a [TokRanking],
    pub val: &'a [TokRanking],
    pub tok: &'a Tok,
    pub ckpt_cfg: CheckpointConfig,
    pub net: Trained<RewardModel>,
    pub device: &'a Device,
    pub ad: Device,
    /// Sequences forwarded by this invocation, for `sequences_per_step`.
    pub seqs: usize,
    /// Set once the last checkpoint is normalised.
    pub norm: Option<Normalisation>,
    /// Each held-out prompt's `(pairs ranked right, pairs)` at the latest evaluation.
    pub heldout_pairs: Vec<(f64, f64)>,
}

impl Stage for RmTrain<'_> {
    type Eval = RankStats;
    type Row = RmRow;

    fn step(&mut self, step: usize, ctx: &mut StepCtx<'_>) -> Result<RmRow> {
        let cfg = &self.job.train;
        let group = draw_with_replacement(self.groups, cfg.batch_size, ctx.rng);
        let model = self.net.model()?;
        let out = rm_step(model, &group, self.tok.eot, cfg, step, ctx.guard, &self.ad)?;
        self.seqs += out.rows;
        let train_stats = rank_stats(&out.rewards, &out.ks);
        let (loss, grad_norm) = (out.grads.loss, out.grads.grad_norm);
        let update = self.net.update(step, ctx, out.grads)?;
        Ok(RmRow {
            loss_train: loss,
            accuracy_train: train_stats.accuracy,
            eval: RankStats::absent(),
            lr: update.lr,
            grad_norm,
        })
    }

    fn eval(&mut self) -> Result<RankStats> {
        let cfg = &self.job.train;
        let n = self.val.len().min(cfg.eval_batches * cfg.batch_size);
        let valid = self.net.model()?.valid();
        let (r, ks) = score_groups(
            &valid,
            &self.val[..n],
            self.tok.eot,
            cfg.batch_size,
            self.device,
        )?;
        self.heldout_pairs = pair_counts(&r, &ks);
        Ok(rank_stats(&r, &ks))
    }

    fn with_eval(&self, row: RmRow, eval: Option<&RankStats>) -> RmRow {
        RmRow {
            eval: eval.cloned().unwrap_or_else(RankStats::absent),
            ..row
        }
    }

    fn message(&self, row: &RmRow, last_eval: Option<&RankStats>) -> String {
        format!(
            "loss {:.3} held-out acc {:.3}",
            row.loss_train,
            last_eval.map_or(f64::NAN, |e| e.accuracy)
        )
    }

    /// Mid-run checkpoints are raw (no gain, no bias: training resumes from them); the last one
    /// is normalised first. The model in training is left raw either way.
    fn save(&mut self, state: &TrainState) -> Result<PathBuf> {
        let mut model = self.net.model()?.valid();
        let mut config = self.ckpt_cfg.clone();
        if state.finished {
            let n_ctx = self.ckpt_cfg.model.n_ctx;
            let norm = normalisation(&model, self.job, self.groups, self.tok, n_ctx, self.device)?;
            model = norm.apply(model);
            config.reward_bias = Some(norm.bias);
            config.reward_gain = Some(norm.gain);
            self.norm = Some(norm);
        }
        checkpoint::save(SaveRequest {
            dir: &self.job.out,
            model: &model,
            config: &config,
            tok: self.tok,
            optim: Some(&self.net.optim),
            state,
        })
    }
}
