//! The language-model stage shared by pretraining and SFT: masked next-token loss, AdamW with
//! warmup + cosine LR, global-norm clipping and the held-out loss, as a [`Stage`] of the one
//! training loop (`train::trainer`, which owns resume, guard, cadence, metrics and progress).
//! The two stages differ only in where batches come from.

use crate::checkpoint::{self, CheckpointConfig, SaveRequest, TrainState};
use crate::data::batching::Batch;
use crate::data::tokenizer::Tok;
use crate::kernels::Launches;
use crate::model::dropout::{seed_masks, seed_masks_rows};
use crate::model::loss::masked_nll;
use crate::model::Lm;
use crate::train::clip::{read_with_norms, sum_squares};
use crate::train::guard::Guard;
use crate::train::metrics::{absent_fields, MetricRow};
use crate::train::nll::nll_backward;
use crate::train::optim::stage_optimizer;
use crate::train::run::StageRun;
use crate::train::tensors::batch_tensors;
use crate::train::trained::{StepGrads, Trained};
use crate::train::trainer::{Cadence, Stage, StepCtx, Trainer};
use crate::util::rng::Rng;
use crate::util::shards;
use crate::util::tensors::read_scalars;
use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::TrainConfig;

/// Where a stage's batches come from.
pub trait BatchSource {
    fn train_batch(&self, rng: &mut Rng) -> Result<Batch>;
    fn eval_batches(&self) -> &[Batch];
}

/// One evaluation: mean loss over the held-out batches (weighted by target count), the batches'
/// losses read back together at the end.
pub fn eval_loss(model: &Lm, batches: &[Batch], device: &Device) -> Result<f64> {
    let m = model.valid();
    let losses: Vec<Tensor<1>> = batches
        .iter()
        .map(|b| {
            let (x, y, w) = batch_tensors(b, device);
            masked_nll(m.forward(x), y, w)
        })
        .collect();
    let (mut sum, mut n) = (0.0, 0.0);
    for (b, l) in batches.iter().zip(read_scalars(losses)?) {
        let cnt = b.n_targets() as f64;
        sum += l as f64 * cnt;
        n += cnt;
    }
    Ok(if n > 0.0 { sum / n } else { f64::NAN })
}

/// Loss, gradient and the gradient's global norm (the two numbers read back together in one
/// transfer) of one training batch, cut into `cfg.micro_batches` micro-batches each
/// weighted by its share of the batch's target weight, so the result is the whole batch's
/// masked mean. On the CPU backend the micro-batches run on parallel threads
/// (`util::shards`); on a GPU the batch goes through in one pass (the device is parallel
/// already, and every extra pass is more dispatches), with each micro-batch's rows still reading
/// its own dropout stream, so both devices drop the same elements.
pub fn batch_grads(
    model: &Lm,
    batch: &Batch,
    cfg: &TrainConfig,
    step: usize,
    guard: &Guard,
    ad: &Device,
) -> Result<StepGrads> {
    let ranges = shards::ranges(batch.b, cfg.micro_batches);
    let split: Vec<Batch> = if shards::is_cpu(ad) {
        ranges.iter().map(|r| batch.rows(r.clone())).collect()
    } else {
        Vec::new()
    };
    let parts: Vec<&Batch> = if split.is_empty() {
        vec![batch]
    } else {
        split.iter().collect()
    };
    let rows: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
    let total = batch.weight_sum().max(1.0);
    let outs = shards::run(parts.len(), ad, |i| {
        if parts.len() == 1 {
            seed_masks_rows(cfg.seed, step, &rows);
        } else {
            seed_masks(cfg.seed, step, i);
        }
        let m = model.clone().fork(ad);
        let ckpt = cfg.checkpoint_activations;
        let (loss, grads) = nll_backward(&m, parts[i], ckpt, |l| guard.poison(step, l), ad)?;
        // the loss divides by max(Σw, 1): this weight makes Σ share·loss the batch's loss
        let share = parts[i].weight_sum().max(1.0) / total;
        Ok((loss, (grads, share)))
    })?;
    let shares: Vec<f64> = outs.iter().map(|(_, (_, s))| *s).collect();
    let (losses, parts_g): (Vec<Tensor<1>>, Vec<_>) = outs.into_iter().unzip();
    let grads = shards::combine(model, parts_g);
    let (v, norms) = read_with_norms(losses, vec![sum_squares(model, &grads)])?;
    let loss = v.iter().zip(&shares).map(|(&l, s)| l as f64 * s).sum();
    Ok(StepGrads {
        loss,
        grad_norm: norms[0],
        grads,
    })
}

/// Runs (or resumes) a stage. `init` is the model to start from when not resuming.
pub struct LmStage<'a> {
    pub name: &'a str,
    pub out: &'a Path,
    pub cfg: &'a TrainConfig,
    pub ckpt_config: CheckpointConfig,
    pub tok: &'a Tok,
    pub device: &'a Device,
    pub resume: bool,
}

/// Summary of a finished stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageSummary {
    pub steps: usize,
    pub final_train_loss: f64,
    pub first_eval_loss: f64,
    pub final_eval_loss: f64,
    pub tokens_per_s: f64,
    pub skipped_steps: usize,
    pub seconds: f64,
    /// Fused kernels this run launched (0 on the CPU backend, where the reference path runs).
    #[serde(default)]
    pub fused_kernels: Launches,
}

/// One row of a language-model stage's `metrics.csv`.
#[derive(Debug, Clone, Copy)]
pub struct LmRow {
    pub loss_train: f64,
    /// Held-out loss (NaN at steps without an evaluation).
    pub loss_eval: f64,
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    pub tokens_per_s: f64,
}

absent_fields!(LmRow {
    loss_train,
    loss_eval,
    lr,
    grad_norm,
    tokens_per_s
});

impl MetricRow for LmRow {
    fn fields(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("loss/train", self.loss_train),
            ("loss/eval", self.loss_eval),
            ("ppl/eval", self.loss_eval.exp()),
            ("lr", self.lr),
            ("grad_norm", self.grad_norm),
            ("tokens_per_s", self.tokens_per_s),
        ]
    }
}

/// The training side of a language-model stage, driven by the [`Trainer`].
struct LmTraining<'a> {
    job: &'a LmStage<'a>,
    data: &'a dyn BatchSource,
    net: Trained<Lm>,
    ad: Device,
    /// The loss of the last step whose update was applied.
    last_loss: f64,
    tokens: usize,
    t0: Option<Instant>,
}

impl Stage for LmTraining<'_> {
    type Eval = f64;
    type Row = LmRow;

    fn step(&mut self, step: usize, ctx: &mut StepCtx<'_>) -> Result<LmRow> {
        let t0 = *self.t0.get_or_insert_with(Instant::now);
        let cfg = self.job.cfg;
        let batch = self.data.train_batch(ctx.rng)?;
        let g = batch_grads(self.net.model()?, &batch, cfg, step, ctx.guard, &self.ad)?;
        let (loss, grad_norm) = (g.loss, g.grad_norm);
        let update = self.net.update(step, ctx, g)?;
        if update.applied {
            self.last_loss = loss;
        }
        self.tokens += batch.b * batch.t;
        Ok(LmRow {
            loss_train: loss,
            loss_eval: f64::NAN,
            lr: update.lr,
            grad_norm,
            tokens_per_s: self.tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9),
        })
    }

    fn eval(&mut self) -> Result<f64> {
        eval_loss(self.net.model()?, self.data.eval_batches(), self.job.device)
    }

    fn with_eval(&self, row: LmRow, eval: Option<&f64>) -> LmRow {
        LmRow {
            loss_eval: eval.copied().unwrap_or(f64::NAN),
            ..row
        }
    }

    fn message(&self, row: &LmRow, last_eval: Option<&f64>) -> String {
        format!(
            "loss {:.3} eval {:.3} {:.0} tok/s",
            self.last_loss,
            last_eval.copied().unwrap_or(f64::NAN),
            row.tokens_per_s
        )
    }

    fn save(&mut self, state: &TrainState) -> Result<PathBuf> {
        let valid = self.net.model()?.valid();
        checkpoint::save(SaveRequest {
            dir: self.job.out,
            model: &valid,
            config: &self.job.ckpt_config,
            tok: self.job.tok,
            optim: Some(&self.net.optim),
            state,
        })
    }
}

impl LmStage<'_> {
    pub fn run(&self, init: Lm, data: &dyn BatchSource) -> Result<(Lm, StageSummary)> {
        let cfg = self.cfg;
        let run = StageRun::begin(self.out);
        run.create_dir()?;
        let begun = run.start(
            (self.resume, cfg.seed),
            stage_optimizer(cfg),
            || Ok((init, ())),
            |dir| {
                let expected = (&self.ckpt_config.model, self.tok);
                Ok((
                    checkpoint::load_resumable_lm(dir, expected, self.device)?,
                    (),
                ))
            },
        )?;
        run.save_settings(cfg)?;
        let mut stage = LmTraining {
            job: self,
            data,
            net: Trained::new(begun.model.train(), begun.optim, cfg),
            ad: self.device.clone().autodiff(),
            last_loss: f64::NAN,
            tokens: 0,
            t0: None,
        };
        let trainer = Trainer {
            name: self.name,
            unit: "step",
            out: self.out,
            cadence: Cadence::of(cfg),
        };
        let fin = trainer.run(&mut stage, begun.start)?;
        let summary = StageSummary {
            steps: fin.state.step,
            final_train_loss: stage.last_loss,
            first_eval_loss: fin.first_eval.unwrap_or(f64::NAN),
            final_eval_loss: fin.last_eval.unwrap_or(f64::NAN),
            tokens_per_s: if fin.steps_run > 0 {
                stage.tokens as f64 / fin.seconds.max(1e-9)
            } else {
                f64::NAN
            },
            skipped_steps: fin.skipped,
            seconds: run.seconds(),
            fused_kernels: run.launches(),
        };
        run.finish(&summary)?;
        Ok((stage.net.into_model()?.valid(), summary))
    }
}
