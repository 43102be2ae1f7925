//! `rlhf ppo`: PPO-ptx (InstructGPT eq. 2). Four models: the policy (from SFT, trained), the
//! reference (a frozen copy of SFT), the value model (from the RM, trained) and the reward model
//! (frozen). Each iteration samples one response per prompt for a batch of prompts, scores it,
//! turns score and per-token KL into rewards, computes GAE advantages and trains both models
//! for a few epochs of minibatches, mixing in pretraining batches when `ptx_coef > 0`.
//!
//! The checkpoint (`ckpt/`) is the policy, a language model every other command reads, with the
//! value model and its optimizer in `ckpt/value/`, written in the same atomic commit; the KL
//! controller and RNG ride in `train_state.json`, so `--resume` continues exactly.

use super::ppo_setup::{initial_learner, load_fixed, save, Extra, Fixed};
use crate::checkpoint::TrainState;
use crate::data::batching::{random_windows, Batch};
use crate::model::generate::SampleConfig;
use crate::ppo::{assign_rewards, rollout, Episode, Learner, PpoConfig, RolloutModels, StepStats};
use crate::rl::{clip_reward, missing_eos_penalty, whiten};
use crate::train::guard::Guard;
use crate::train::metrics::{log_line, progress_bar, MetricsWriter};
use crate::train::schedule::LrSchedule;
use anyhow::{Context, Result};
use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where rewards come from.
#[derive(Debug, Clone)]
pub enum RewardSource {
    /// A reward-model checkpoint (`rlhf rm`).
    Model(PathBuf),
    /// Count of a token (given as text that encodes to one token) in the response, times a scale.
    TokenCount { text: String, scale: f32 },
}

/// Everything `rlhf ppo` needs.
pub struct PpoJob {
    /// The policy's start (an SFT checkpoint, or an earlier PPO policy).
    pub policy: PathBuf,
    /// The frozen KL reference; None: the same checkpoint as `policy` (InstructGPT keeps the
    /// SFT model as the reference in every round).
    pub reference: Option<PathBuf>,
    pub reward: RewardSource,
    /// Value-model start (an RM checkpoint). None: the reward model, or with a token-count
    /// reward the policy's trunk with a fresh head.
    pub value_init: Option<PathBuf>,
    /// Prompts (`{"prompt": ...}` per line).
    pub prompts: PathBuf,
    /// Pretraining text files for ptx (read only when `ptx_coef > 0`).
    pub ptx_corpus: Vec<PathBuf>,
    pub out: PathBuf,
    pub cfg: PpoConfig,
    pub resume: bool,
}

/// One iteration's numbers, as written to `metrics.csv`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct IterStats {
    /// Mean RM score of the rollout responses.
    pub rm_score: f64,
    /// Mean KL to the reference, nats per response.
    pub kl: f64,
    /// Mean total reward per response: score − β·KL.
    pub reward: f64,
    pub policy_loss: f64,
    pub value_loss: f64,
    pub ptx_loss: f64,
    pub clip_frac: f64,
    pub entropy: f64,
    pub approx_kl: f64,
    /// Mean response length in tokens (closing token excluded).
    pub response_len: f64,
    /// β used this iteration.
    pub kl_coef: f64,
}

const COLUMNS: [&str; 11] = [
    "ppo/rm_score",
    "ppo/kl",
    "ppo/reward",
    "loss/policy",
    "loss/value",
    "loss/ptx",
    "ppo/clip_frac",
    "ppo/entropy",
    "ppo/approx_kl",
    "ppo/response_len",
    "ppo/kl_coef",
];

impl IterStats {
    fn row(&self) -> [f64; 11] {
        [
            self.rm_score,
            self.kl,
            self.reward,
            self.policy_loss,
            self.value_loss,
            self.ptx_loss,
            self.clip_frac,
            self.entropy,
            self.approx_kl,
            self.response_len,
            self.kl_coef,
        ]
    }
}

/// What a finished (or resumed-and-finished) run reports; saved as `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PpoSummary {
    pub steps: usize,
    pub episodes: usize,
    /// Stats of the first and last iteration run by this invocation.
    pub first: IterStats,
    pub last: IterStats,
    /// Pretraining batches read (0 when `ptx_coef` is 0).
    pub ptx_batches: usize,
    /// Gradient steps skipped for non-finite numbers.
    pub skipped_steps: usize,
    pub seconds: f64,
}

/// Gradient steps per iteration: epochs × minibatches.
fn updates_per_iteration(cfg: &PpoConfig) -> usize {
    cfg.ppo_epochs * cfg.rollout_batch.div_ceil(cfg.minibatch.max(1))
}

/// Mean of the finite values (NaN when there are none).
fn finite_mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs
        .filter(|x| x.is_finite())
        .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

/// Scores, KL-penalised rewards and advantages of a fresh rollout; returns the raw scores.
fn reward_episodes(
    eps: &mut [Episode],
    fixed: &Fixed,
    cfg: &PpoConfig,
    beta: f32,
    device: &Device,
) -> Result<Vec<f32>> {
    let raw = fixed
        .scorer
        .score(eps, fixed.tok.eot, cfg.minibatch, device)?;
    let mut scores: Vec<f32> = raw
        .iter()
        .zip(eps.iter())
        .map(|(&s, e)| {
            missing_eos_penalty(
                clip_reward(s, cfg.reward_clip),
                e.ended,
                cfg.missing_eos_penalty,
            )
        })
        .collect();
    if cfg.whiten_rewards {
        scores = whiten(&scores, false);
    }
    for (e, &s) in eps.iter_mut().zip(&raw) {
        e.score = s;
    }
    assign_rewards(eps, &scores, beta, cfg.gamma, cfg.lambda);
    Ok(raw)
}

/// What an iteration reads but does not change.
struct Ctx<'a> {
    fixed: &'a Fixed,
    cfg: &'a PpoConfig,
    pb: &'a indicatif::ProgressBar,
    device: &'a Device,
}

/// One PPO iteration: rollout, rewards, then `ppo_epochs` passes of minibatch steps.
fn iteration(
    learner: Learner,
    ctx: &Ctx<'_>,
    state: &mut TrainState,
    extra: &mut Extra,
    ptx_read: &mut usize,
    guard: &mut Guard,
) -> Result<(Learner, IterStats)> {
    let (fixed, cfg, pb, device) = (ctx.fixed, ctx.cfg, ctx.pb, ctx.device);
    let ad = device.clone().autodiff();
    let eot = fixed.tok.eot;
    let prompts: Vec<Vec<u32>> = (0..cfg.rollout_batch)
        .map(|_| fixed.prompts[state.rng.below(fixed.prompts.len())].clone())
        .collect();
    let sampling = SampleConfig {
        temperature: cfg.temperature,
        top_k: 0,
        top_p: 1.0,
        max_new_tokens: cfg.max_new_tokens,
    };
    let (policy_now, value_now) = (learner.policy.valid(), learner.value.valid());
    let models = RolloutModels {
        policy: &policy_now,
        reference: &fixed.reference,
        value: &value_now,
    };
    let mut eps = rollout(
        &models,
        &prompts,
        &sampling,
        eot,
        cfg.minibatch,
        &mut state.rng,
        device,
    )?;
    let beta = extra.kl.value();
    let raw = reward_episodes(&mut eps, fixed, cfg, beta, device)?;
    let n = eps.len() as f64;
    let kl = eps.iter().map(|e| e.kl() as f64).sum::<f64>() / n;
    let rm_score = raw.iter().map(|&s| s as f64).sum::<f64>() / n;
    let schedule = |lr: f64| LrSchedule {
        lr,
        min_lr: lr,
        warmup: cfg.warmup,
        total: cfg.steps,
    };
    let lrs = (
        schedule(cfg.policy_lr).at(state.step),
        schedule(cfg.value_lr).at(state.step),
    );
    let mut learner = learner;
    let mut steps: Vec<StepStats> = Vec::new();
    for _ in 0..cfg.ppo_epochs {
        let mut order: Vec<usize> = (0..eps.len()).collect();
        state.rng.shuffle(&mut order);
        for mb in order.chunks(cfg.minibatch) {
            let batch: Vec<&Episode> = mb.iter().map(|&i| &eps[i]).collect();
            let ptx: Option<Batch> = match &fixed.ptx {
                Some(stream) => {
                    *ptx_read += 1;
                    Some(random_windows(
                        stream,
                        cfg.ptx_batch,
                        fixed.model_cfg.n_ctx,
                        &mut state.rng,
                    )?)
                }
                None => None,
            };
            let update = state.step * updates_per_iteration(cfg) + steps.len();
            let (l, s, skipped) =
                learner.step(&batch, ptx.as_ref(), lrs, cfg, eot, (guard, update), &ad)?;
            if let Some(msg) = skipped {
                log_line(pb, msg);
            }
            learner = l;
            steps.push(s);
        }
    }
    extra.kl.update(kl as f32, eps.len());
    extra.episodes += eps.len();
    let mean = |f: fn(&StepStats) -> f64| finite_mean(steps.iter().map(f));
    let stats = IterStats {
        rm_score,
        kl,
        reward: rm_score - beta as f64 * kl,
        policy_loss: mean(|s| s.policy_loss),
        value_loss: mean(|s| s.value_loss),
        ptx_loss: mean(|s| s.ptx_loss),
        clip_frac: mean(|s| s.clip_frac),
        entropy: mean(|s| s.entropy),
        approx_kl: mean(|s| s.approx_kl),
        response_len: eps.iter().map(|e| e.response().len() as f64).sum::<f64>() / n,
        kl_coef: beta as f64,
    };
    Ok((learner, stats))
}

/// Runs (or resumes) PPO.
pub fn run(job: PpoJob, device: &Device) -> Result<PpoSummary> {
    let cfg = &job.cfg;
    cfg.validate()?;
    std::fs::create_dir_all(&job.out).with_context(|| format!("creating {}", job.out.display()))?;
    crate::config::save_json(cfg, &job.out.join("stage.json"))?;
    let fixed = load_fixed(&job, device)?;
    let (learner, mut state, mut extra) = initial_learner(&job, &fixed, device)?;
    let mut learner = Learner {
        policy: learner.policy.train(),
        value: learner.value.train(),
        ..learner
    };
    let resumed_at = (state.step > 0).then_some(state.step);
    let mut metrics = MetricsWriter::open(&job.out, &COLUMNS, resumed_at)?;
    let pb = progress_bar(cfg.steps as u64, "ppo");
    pb.set_position(state.step as u64);
    let t0 = Instant::now();
    let (mut first, mut last) = (None, IterStats::default());
    let mut ptx_read = 0usize;
    let mut guard = Guard::new("ppo", cfg.max_bad_steps)?;
    if state.step > 0 {
        guard.saved(&job.out.join("ckpt"), state.step);
    }
    let ctx = Ctx {
        fixed: &fixed,
        cfg,
        pb: &pb,
        device,
    };
    while state.step < cfg.steps {
        let (l, s) = iteration(
            learner,
            &ctx,
            &mut state,
            &mut extra,
            &mut ptx_read,
            &mut guard,
        )?;
        learner = l;
        state.step += 1;
        metrics.row(state.step, &s.row())?;
        pb.set_message(format!(
            "score {:.3} kl {:.2} len {:.1}",
            s.rm_score, s.kl, s.response_len
        ));
        pb.inc(1);
        first.get_or_insert(s);
        last = s;
        state.finished = state.step == cfg.steps;
        if state.step.is_multiple_of(cfg.checkpoint_every.max(1)) || state.finished {
            state.extra = serde_json::to_value(&extra)?;
            save(&job, &fixed, &learner, &state)?;
            guard.saved(&job.out.join("ckpt"), state.step);
        }
    }
    pb.finish_and_clear();
    let summary = PpoSummary {
        steps: state.step,
        episodes: extra.episodes,
        first: first.unwrap_or(last),
        last,
        ptx_batches: ptx_read,
        skipped_steps: guard.skipped(),
        seconds: t0.elapsed().as_secs_f64(),
    };
    crate::config::save_json(&summary, &job.out.join("summary.json"))?;
    Ok(summary)
}

/// True when `out` holds a finished PPO run.
pub fn is_finished(out: &Path) -> bool {
    super::lm_train::is_finished(out)
}
