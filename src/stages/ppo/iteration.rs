//! One PPO iteration as a stage of the training loop: sample one response per prompt for a
//! batch of prompts, score it, turn score and per-token KL into rewards and GAE advantages,
//! then train policy and value model for `ppo_epochs` passes of minibatches (with pretraining
//! batches when `ptx_coef > 0`). The trainer owns the loop, the guard, metrics and cadence.

use super::config::{Algo, PpoConfig};
use super::job::{IterStats, PpoJob};
use super::setup::{save, Extra, Fixed};
use super::{
    assign_rewards, assign_rloo, rollout, Episode, Learner, Minibatch, RolloutModels, StepStats,
};
use crate::checkpoint::TrainState;
use crate::data::batching::{random_windows, Batch};
use crate::model::generate::SampleConfig;
use crate::rl::{clip_reward, missing_eos_penalty, whiten};
use crate::train::schedule::LrSchedule;
use crate::train::trainer::{Stage, StepCtx};
use anyhow::{Context, Result};
use burn::module::Module;
use burn::prelude::*;
use std::path::PathBuf;

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
    match cfg.algo {
        Algo::Ppo => assign_rewards(eps, &scores, beta, cfg.gamma, cfg.lambda),
        Algo::Rloo => assign_rloo(eps, &scores, beta, cfg.rloo_k),
    }
    Ok(raw)
}

/// Which prompts an iteration answers, `rollout_batch` in all: drawn at random, each once
/// (PPO) or `rloo_k` times in a row (RLOO: the group whose other members are each one's baseline).
fn rollout_prompts(
    n_prompts: usize,
    cfg: &PpoConfig,
    rng: &mut crate::util::rng::Rng,
) -> Vec<usize> {
    let per_prompt = match cfg.algo {
        Algo::Ppo => 1,
        Algo::Rloo => cfg.rloo_k,
    };
    (0..cfg.rollout_batch / per_prompt)
        .flat_map(|_| std::iter::repeat_n(rng.below(n_prompts), per_prompt))
        .collect()
}

/// A scored rollout of one iteration.
struct Rollout {
    eps: Vec<Episode>,
    /// Mean KL per response and mean raw RM score.
    kl: f64,
    rm_score: f64,
    /// β used for the rewards.
    beta: f32,
}

/// The PPO stage the trainer drives: the two trained models and what rides along.
pub(super) struct PpoTrain<'a> {
    pub job: &'a PpoJob,
    pub fixed: &'a Fixed,
    /// Always `Some` between iterations (a step takes the learner by value).
    pub learner: Option<Learner>,
    pub extra: Extra,
    /// Pretraining batches read by this invocation.
    pub ptx_read: usize,
    pub device: &'a Device,
}

impl PpoTrain<'_> {
    /// Samples `rollout_batch` responses and scores them: one for each of as many prompts
    /// (PPO), or `rloo_k` in a row for each of `rollout_batch / rloo_k` prompts (RLOO).
    fn rollout(&self, learner: &Learner, rng: &mut crate::util::rng::Rng) -> Result<Rollout> {
        let (fixed, cfg) = (self.fixed, &self.job.cfg);
        let prompts: Vec<Vec<u32>> = rollout_prompts(fixed.prompts.len(), cfg, rng)
            .into_iter()
            .map(|i| fixed.prompts[i].clone())
            .collect();
        let sampling = SampleConfig {
            temperature: cfg.temperature,
            top_k: 0,
            top_p: 1.0,
            max_new_tokens: cfg.max_new_tokens,
        };
        let policy_now = learner.policy.valid();
        let value_now = learner.critic.as_ref().map(|c| (c.model.valid(), c.bias));
        let models = RolloutModels {
            policy: &policy_now,
            reference: &fixed.reference,
            value: value_now.as_ref().map(|(v, b)| (v, *b)),
        };
        let eot = fixed.tok.eot;
        let mut eps = rollout(
            &models,
            &prompts,
            &sampling,
            eot,
            cfg.minibatch,
            rng,
            self.device,
        )?;
        let beta = self.extra.kl.value();
        let raw = reward_episodes(&mut eps, fixed, cfg, beta, self.device)?;
        let n = eps.len() as f64;
        Ok(Rollout {
            kl: eps.iter().map(|e| e.kl() as f64).sum::<f64>() / n,
            rm_score: raw.iter().map(|&s| s as f64).sum::<f64>() / n,
            eps,
            beta,
        })
    }

    /// `ppo_epochs` passes of minibatch steps over the rollout; returns each step's stats.
    fn train_on(
        &mut self,
        mut learner: Learner,
        eps: &[Episode],
        step: usize,
        ctx: &mut StepCtx<'_>,
    ) -> Result<(Learner, Vec<StepStats>)> {
        let (fixed, cfg) = (self.fixed, &self.job.cfg);
        let ad = self.device.clone().autodiff();
        let schedule = |lr: f64| LrSchedule {
            lr,
            min_lr: lr,
            warmup: cfg.warmup,
            total: cfg.steps,
        };
        let policy_lr = schedule(cfg.policy_lr).at(step);
        let value_lr = schedule(cfg.value_lr).at(step);
        let mut steps: Vec<StepStats> = Vec::new();
        for _ in 0..cfg.ppo_epochs {
            let mut order: Vec<usize> = (0..eps.len()).collect();
            ctx.rng.shuffle(&mut order);
            for chunk in order.chunks(cfg.minibatch) {
                let batch: Vec<&Episode> = chunk.iter().map(|&i| &eps[i]).collect();
                let ptx: Option<Batch> = match &fixed.ptx {
                    Some(stream) => {
                        self.ptx_read += 1;
                        let n_ctx = fixed.model_cfg.n_ctx;
                        Some(random_windows(stream, cfg.ptx_batch, n_ctx, ctx.rng)?)
                    }
                    None => None,
                };
                let mb = Minibatch {
                    eps: &batch,
                    ptx: ptx.as_ref(),
                    policy_lr,
                    value_lr,
                    update: step * updates_per_iteration(cfg) + steps.len(),
                };
                let (l, s, skipped) = learner.step(&mb, cfg, fixed.tok.eot, ctx.guard, &ad)?;
                if let Some(msg) = skipped {
                    ctx.log(msg);
                }
                learner = l;
                steps.push(s);
            }
        }
        Ok((learner, steps))
    }
}

impl Stage for PpoTrain<'_> {
    type Eval = ();
    type Row = IterStats;

    /// One PPO iteration: rollout, rewards, then `ppo_epochs` passes of minibatch steps.
    fn step(&mut self, step: usize, ctx: &mut StepCtx<'_>) -> Result<IterStats> {
        let learner = self
            .learner
            .take()
            .context("the models were lost in a failed step")?;
        let r = self.rollout(&learner, ctx.rng)?;
        let (learner, steps) = self.train_on(learner, &r.eps, step, ctx)?;
        self.learner = Some(learner);
        self.extra.kl.update(r.kl as f32, r.eps.len());
        self.extra.episodes += r.eps.len();
        let mean = |f: fn(&StepStats) -> f64| finite_mean(steps.iter().map(f));
        let n = r.eps.len() as f64;
        Ok(IterStats {
            rm_score: r.rm_score,
            kl: r.kl,
            reward: r.rm_score - r.beta as f64 * r.kl,
            policy_loss: mean(|s| s.policy_loss),
            value_loss: mean(|s| s.value_loss),
            ptx_loss: mean(|s| s.ptx_loss),
            clip_frac: mean(|s| s.clip_frac),
            entropy: mean(|s| s.entropy),
            approx_kl: mean(|s| s.approx_kl),
            response_len: r.eps.iter().map(|e| e.response().len() as f64).sum::<f64>() / n,
            kl_coef: r.beta as f64,
        })
    }

    /// PPO has no held-out evaluation inside the loop (`rlhf eval` measures the policy).
    fn eval(&mut self) -> Result<()> {
        Ok(())
    }

    fn with_eval(&self, row: IterStats, _: Option<&()>) -> IterStats {
        row
    }

    fn message(&self, s: &IterStats, _: Option<&()>) -> String {
        format!(
            "score {:.3} kl {:.2} len {:.1}",
            s.rm_score, s.kl, s.response_len
        )
    }

    /// The KL controller and episode count ride in `train_state.json`.
    fn save(&mut self, state: &TrainState) -> Result<PathBuf> {
        let state = TrainState {
            extra: serde_json::to_value(&self.extra)?,
            ..state.clone()
        };
        let learner = self.learner.as_ref().context("no models to save")?;
        save(self.job, self.fixed, learner, &state)?;
        Ok(self.job.out.join("ckpt"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::Rng;

    #[test]
    fn rloo_answers_each_drawn_prompt_k_times_in_a_row_and_ppo_once() {
        let ppo = PpoConfig {
            rollout_batch: 12,
            ..PpoConfig::default()
        };
        let rloo = PpoConfig {
            algo: Algo::Rloo,
            rloo_k: 3,
            ..ppo.clone()
        };
        let p = rollout_prompts(50, &ppo, &mut Rng::new(5));
        let r = rollout_prompts(50, &rloo, &mut Rng::new(5));
        assert_eq!((p.len(), r.len()), (12, 12));
        // PPO draws 12 prompts; RLOO the first 4 of the same draws, 3 times each
        for (g, group) in r.chunks(3).enumerate() {
            assert!(group.iter().all(|&i| i == p[g]), "{r:?} vs {p:?}");
        }
        let distinct: std::collections::BTreeSet<usize> = p.iter().copied().collect();
        assert!(
            distinct.len() > 4,
            "PPO's prompts are independent draws: {p:?}"
        );
    }
}
