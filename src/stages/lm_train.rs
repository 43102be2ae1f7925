//! The training loop shared by pretraining and SFT: masked next-token loss, AdamW with warmup +
//! cosine LR, global-norm clipping, held-out evaluation, non-finite guard, metrics, progress bar
//! and resumable checkpoints. The stages differ only in where batches come from.

use crate::checkpoint::{self, CheckpointConfig, SaveRequest, TrainState};
use crate::data::batching::Batch;
use crate::data::tokenizer::Tok;
use crate::model::dropout::seed_masks;
use crate::model::loss::masked_nll;
use crate::model::Gpt;
use crate::train::clip::clip_global_norm;
use crate::train::guard::{Guard, Verdict};
use crate::train::metrics::{log_line, progress_bar, MetricsWriter};
use crate::train::schedule::LrSchedule;
use crate::train::shards;
use crate::train::tensors::{batch_tensors, scalar};
use crate::util::rng::Rng;
use anyhow::Result;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Optimisation settings of a language-model stage (saved as `stage.json` in its directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Optimizer steps.
    pub steps: usize,
    /// Sequences per batch.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate as a fraction of `lr`.
    pub min_lr_ratio: f64,
    /// Linear warmup steps.
    pub warmup: usize,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Adam β2 (InstructGPT used 0.95).
    pub beta2: f64,
    /// Clip gradients to this global L2 norm (0 disables).
    pub grad_clip: f64,
    /// Evaluate held-out loss every this many steps (and at the end).
    pub eval_every: usize,
    /// Held-out batches per evaluation.
    pub eval_batches: usize,
    /// Write a resumable checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// Stop after this many consecutive non-finite losses or gradients (each one is skipped).
    pub max_bad_steps: usize,
    /// Seed for initialisation, batch order and dropout.
    pub seed: u64,
    /// Micro-batches each batch is cut into; on the CPU backend they run on parallel threads
    /// (`train::shards`). The gradient is the whole batch's either way, but dropout masks are
    /// drawn per micro-batch, so this is part of what makes a run reproducible. Default 2.
    #[serde(default = "default_micro_batches")]
    pub micro_batches: usize,
}

/// Default [`TrainConfig::micro_batches`]: one per core of a 2-core laptop.
pub fn default_micro_batches() -> usize {
    2
}

impl TrainConfig {
    /// AdamW with this stage's β2 and weight decay (ε 1e-8, as PyTorch).
    pub fn optimizer(&self) -> ModuleOptimizer {
        AdamWConfig::new()
            .with_beta_2(self.beta2 as f32)
            .with_weight_decay(self.weight_decay as f32)
            .with_epsilon(1e-8)
            .init()
    }

    /// Warmup + cosine decay to `lr · min_lr_ratio` over `steps`.
    pub fn schedule(&self) -> LrSchedule {
        LrSchedule {
            lr: self.lr,
            min_lr: self.lr * self.min_lr_ratio,
            warmup: self.warmup.min(self.steps),
            total: self.steps,
        }
    }

    /// The training state of a stage that has not run yet.
    pub fn initial_state(&self) -> TrainState {
        TrainState {
            step: 0,
            rng: Rng::new(self.seed),
            finished: false,
            extra: serde_json::Value::Null,
        }
    }
}

/// Where a stage's batches come from.
pub trait BatchSource {
    fn train_batch(&self, rng: &mut Rng) -> Result<Batch>;
    fn eval_batches(&self) -> &[Batch];
}

/// One evaluation: mean loss over the held-out batches (weighted by target count).
pub fn eval_loss(model: &Gpt, batches: &[Batch], device: &Device) -> Result<f64> {
    let m = model.valid();
    let (mut sum, mut n) = (0.0, 0.0);
    for b in batches {
        let (x, y, w) = batch_tensors(b, device);
        let cnt = b.n_targets() as f64;
        sum += scalar(masked_nll(m.forward(x), y, w)) * cnt;
        n += cnt;
    }
    Ok(if n > 0.0 { sum / n } else { f64::NAN })
}

/// Loss and gradient of one training batch, cut into `cfg.micro_batches` micro-batches
/// (`train::shards`: parallel threads on the CPU backend), each weighted by its share of the
/// batch's target weight, so the result is the whole batch's masked mean.
pub fn batch_grads(
    model: &Gpt,
    batch: &Batch,
    cfg: &TrainConfig,
    step: usize,
    guard: &Guard,
    ad: &Device,
) -> Result<(f64, GradientsParams)> {
    let parts: Vec<Batch> = shards::ranges(batch.b, cfg.micro_batches)
        .into_iter()
        .map(|r| batch.rows(r))
        .collect();
    let total = batch.weight_sum().max(1.0);
    let outs = shards::run(parts.len(), ad, |i| {
        seed_masks(cfg.seed, step, i);
        let m = model.clone().fork(ad);
        let (x, y, w) = batch_tensors(&parts[i], ad);
        let loss = guard.poison(step, masked_nll(m.forward(x), y, w));
        // masked_nll divides by max(Σw, 1): this weight makes Σ share·loss the batch's loss
        let share = parts[i].weight_sum().max(1.0) / total;
        let loss_v = scalar(loss.clone()) * share;
        Ok((
            loss_v,
            (GradientsParams::from_grads(loss.backward(), &m), share),
        ))
    })?;
    let loss_v = outs.iter().map(|(l, _)| l).sum();
    Ok((
        loss_v,
        shards::combine(model, outs.into_iter().map(|(_, g)| g).collect()),
    ))
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
}

impl LmStage<'_> {
    pub fn run(&self, init: Gpt, data: &dyn BatchSource) -> Result<(Gpt, StageSummary)> {
        let cfg = self.cfg;
        std::fs::create_dir_all(self.out)?;
        crate::config::save_json(cfg, &self.out.join("stage.json"))?;
        let ad = self.device.clone().autodiff();
        let mut optim = cfg.optimizer();
        let mut model = init;
        let mut state = cfg.initial_state();
        let mut guard = Guard::new(self.name, cfg.max_bad_steps)?;
        if self.resume && checkpoint::resolve(self.out).is_ok() {
            let dir = checkpoint::resolve(self.out)?;
            let loaded = checkpoint::load_lm(&dir, self.device)?;
            checkpoint::check_resumable(&dir, &loaded.config.model, &self.ckpt_config.model)?;
            let (m, o, s) = checkpoint::load_resume(&dir, loaded.model, optim)?;
            (model, optim, state) = (m, o, s);
            guard.saved(&dir, state.step);
            eprintln!(
                "{}: resuming from {} at step {}",
                self.name,
                dir.display(),
                state.step
            );
        }
        let sched = cfg.schedule();
        let mut metrics = MetricsWriter::open(
            self.out,
            &[
                "loss/train",
                "loss/eval",
                "ppl/eval",
                "lr",
                "grad_norm",
                "tokens_per_s",
            ],
            if state.step > 0 {
                Some(state.step)
            } else {
                None
            },
        )?;
        let first_eval = eval_loss(&model, data.eval_batches(), self.device)?;
        let mut model = model.train();
        let pb = progress_bar(cfg.steps as u64, self.name);
        pb.set_position(state.step as u64);
        let (mut last_loss, mut last_eval) = (f64::NAN, first_eval);
        let t0 = Instant::now();
        let mut tokens = 0usize;
        let start_step = state.step;
        while state.step < cfg.steps {
            let step = state.step;
            let batch = data.train_batch(&mut state.rng)?;
            let (loss_v, mut grads) = batch_grads(&model, &batch, cfg, step, &guard, &ad)?;
            let norm = clip_global_norm(&model, &mut grads, cfg.grad_clip);
            match guard.check(step, loss_v, norm)? {
                Verdict::Apply => {
                    model = optim.step(sched.at(step), model, grads);
                    last_loss = loss_v;
                }
                Verdict::Skip(msg) => log_line(&pb, msg),
            }
            tokens += batch.b * batch.t;
            state.step += 1;
            let tps = tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            let is_last = state.step == cfg.steps;
            let eval = if state.step.is_multiple_of(cfg.eval_every.max(1)) || is_last {
                last_eval = eval_loss(&model, data.eval_batches(), self.device)?;
                last_eval
            } else {
                f64::NAN
            };
            metrics.row(
                state.step,
                &[loss_v, eval, eval.exp(), sched.at(step), norm, tps],
            )?;
            pb.set_message(format!(
                "loss {last_loss:.3} eval {last_eval:.3} {tps:.0} tok/s"
            ));
            pb.inc(1);
            state.finished = is_last;
            if state.step.is_multiple_of(cfg.checkpoint_every.max(1)) || is_last {
                let valid = model.valid();
                let dir = checkpoint::save(SaveRequest {
                    dir: self.out,
                    model: &valid,
                    config: &self.ckpt_config,
                    tok: self.tok,
                    optim: Some(&optim),
                    state: &state,
                })?;
                guard.saved(&dir, state.step);
            }
        }
        pb.finish_and_clear();
        let secs = t0.elapsed().as_secs_f64();
        let summary = StageSummary {
            steps: state.step,
            final_train_loss: last_loss,
            first_eval_loss: first_eval,
            final_eval_loss: last_eval,
            tokens_per_s: if state.step > start_step {
                tokens as f64 / secs.max(1e-9)
            } else {
                f64::NAN
            },
            skipped_steps: guard.skipped(),
            seconds: secs,
        };
        crate::config::save_json(&summary, &self.out.join("summary.json"))?;
        Ok((model.valid(), summary))
    }
}

/// True when `out` holds a finished stage (its checkpoint says so).
pub fn is_finished(out: &Path) -> bool {
    checkpoint::resolve(out)
        .ok()
        .and_then(|d| crate::config::load_json::<TrainState>(&d.join("train_state.json")).ok())
        .map(|s| s.finished)
        .unwrap_or(false)
}
