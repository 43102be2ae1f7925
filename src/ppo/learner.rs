//! One PPO gradient step on a minibatch of episodes: the clipped surrogate (plus γ_ptx times
//! the pretraining loss) for the policy, the clipped value loss for the value model, each with
//! its own AdamW, learning rate and global-norm clipping. A non-finite loss or gradient skips
//! both updates (the stage's [`Guard`] counts it and stops the run after too many in a row).

use super::episode::{Episode, Grid};
use super::loss::{entropy, policy_loss, value_loss};
use crate::config::PpoConfig;
use crate::data::batching::Batch;
use crate::model::loss::{masked_nll, tempered, token_logprobs};
use crate::model::{Gpt, RewardModel};
use crate::rl::ppo_policy_loss;
use crate::train::clip::clip_global_norm;
use crate::train::guard::{Guard, Verdict};
use crate::train::tensors::batch_tensors;
use crate::util::shards;
use crate::util::tensors::{floats, ints, scalar, to_vec};
use anyhow::{anyhow, Result};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

/// The two trained models (on the autodiff device) and their optimizers.
pub struct Learner {
    pub policy: Gpt,
    pub value: RewardModel,
    /// Added to every value (not trained): the normalisation bias of the reward model the
    /// value model starts from, so that V₀ is that model's reward, bias included, as the
    /// scores it predicts are. Saved as the value checkpoint's `reward_bias`.
    pub value_bias: f32,
    pub policy_optim: ModuleOptimizer,
    pub value_optim: ModuleOptimizer,
}

/// What one minibatch step measured (losses before the update).
#[derive(Debug, Clone, Copy, Default)]
pub struct StepStats {
    pub policy_loss: f64,
    pub value_loss: f64,
    /// Pretraining NLL (nats per token); NaN without ptx.
    pub ptx_loss: f64,
    pub clip_frac: f64,
    pub approx_kl: f64,
    pub entropy: f64,
    pub policy_grad_norm: f64,
    pub value_grad_norm: f64,
    /// False when the update was skipped (non-finite loss or gradient).
    pub applied: bool,
}

impl Learner {
    /// One gradient step of both models on `eps`; `ptx` is a pretraining batch when
    /// `cfg.ptx_coef > 0`. Learning rates are `(policy, value)`. `update` numbers this step
    /// among all of the run's (for the guard's log and its NaN-injection test hook); the
    /// returned message says why an update was skipped.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        mut self,
        eps: &[&Episode],
        ptx: Option<&Batch>,
        lrs: (f64, f64),
        cfg: &PpoConfig,
        pad: u32,
        (guard, update): (&mut Guard, usize),
        ad: &Device,
    ) -> Result<(Self, StepStats, Option<String>)> {
        let g = Grid::new(eps, pad);
        let guard_ro: &Guard = guard;
        // the policy's surrogate, its ptx term and the value loss are three independent
        // forward/backward passes: on the CPU backend they run on parallel threads
        // (`util::shards`), each on its own fork of its model
        let n_parts = if ptx.is_some() { 3 } else { 2 };
        let parts = shards::run(n_parts, ad, |i| -> Result<Part> {
            match i {
                0 => self.surrogate_part(eps, &g, cfg, guard_ro, update, ad),
                1 => self.value_part(eps, &g, cfg, ad),
                _ => self.ptx_part(ptx, ad),
            }
        })?;
        let (mut stats, mut ptx_loss, mut value_loss) = (StepStats::default(), f64::NAN, 0.0);
        let (mut pparts, mut vgrads) = (Vec::new(), None);
        for part in parts {
            match part {
                Part::Surrogate(s, grads) => {
                    stats = s;
                    pparts.push((grads, 1.0));
                }
                Part::Ptx(loss, grads) => {
                    ptx_loss = loss;
                    pparts.push((grads, cfg.ptx_coef));
                }
                Part::Value(loss, grads) => {
                    value_loss = loss;
                    vgrads = Some(grads);
                }
            }
        }
        (stats.ptx_loss, stats.value_loss) = (ptx_loss, value_loss);
        let total_v = stats.policy_loss
            + if ptx.is_some() {
                cfg.ptx_coef * stats.ptx_loss
            } else {
                0.0
            };
        let mut pgrads = shards::combine(&self.policy, pparts);
        stats.policy_grad_norm = clip_global_norm(&self.policy, &mut pgrads, cfg.grad_clip);
        let mut vgrads = vgrads.ok_or_else(|| anyhow!("PPO step: the value pass is missing"))?;
        stats.value_grad_norm = clip_global_norm(&self.value, &mut vgrads, cfg.grad_clip);

        let verdict = guard.check(
            update,
            total_v + stats.value_loss,
            stats.policy_grad_norm + stats.value_grad_norm,
        )?;
        stats.applied = verdict == Verdict::Apply;
        if stats.applied {
            self.policy = self.policy_optim.step(lrs.0, self.policy, pgrads);
            self.value = self.value_optim.step(lrs.1, self.value, vgrads);
        }
        let skipped = match verdict {
            Verdict::Skip(msg) => Some(msg),
            Verdict::Apply => None,
        };
        Ok((self, stats, skipped))
    }

    /// The clipped surrogate on a fork of the policy: its stats and gradients.
    fn surrogate_part(
        &self,
        eps: &[&Episode],
        g: &Grid,
        cfg: &PpoConfig,
        guard: &Guard,
        update: usize,
        ad: &Device,
    ) -> Result<Part> {
        let policy = self.policy.clone().fork(ad);
        let shape = [g.b, g.t];
        let x = ints(&g.x, shape, ad);
        let y = ints(&g.y, shape, ad);
        let mask = floats(&g.mask, shape, ad);
        // the rollouts were sampled at this temperature: π_new must be the same distribution
        let logits = tempered(policy.forward(x), cfg.temperature); // (B, T, V)
        let ent = scalar(entropy(logits.clone(), mask.clone()));
        let logp_new = token_logprobs(logits, y); // (B, T)
        let new_host: Vec<f32> = g.gather(&to_vec(logp_new.clone().detach())?).concat();
        let old_host: Vec<f32> = eps.iter().flat_map(|e| e.logp_old.clone()).collect();
        let adv_host: Vec<f32> = eps.iter().flat_map(|e| e.advantages.clone()).collect();
        let diag = ppo_policy_loss(&new_host, &old_host, &adv_host, cfg.clip_eps);
        let pl = policy_loss(
            logp_new,
            grid_field(g, eps, |e| &e.logp_old, ad),
            grid_field(g, eps, |e| &e.advantages, ad),
            mask,
            cfg.clip_eps,
        );
        let pl = guard.poison(update, pl);
        let stats = StepStats {
            policy_loss: scalar(pl.clone()),
            clip_frac: diag.clip_frac as f64,
            approx_kl: diag.approx_kl as f64,
            entropy: ent,
            ..Default::default()
        };
        Ok(Part::Surrogate(
            stats,
            GradientsParams::from_grads(pl.backward(), &policy),
        ))
    }

    /// The pretraining NLL of a ptx batch on a fork of the policy (unweighted).
    fn ptx_part(&self, ptx: Option<&Batch>, ad: &Device) -> Result<Part> {
        let b = ptx.ok_or_else(|| anyhow!("ptx part without a ptx batch"))?;
        let policy = self.policy.clone().fork(ad);
        let (px, py, pw) = batch_tensors(b, ad);
        let l = masked_nll(policy.forward(px), py, pw);
        Ok(Part::Ptx(
            scalar(l.clone()),
            GradientsParams::from_grads(l.backward(), &policy),
        ))
    }

    /// The clipped squared error of the value model to the λ-returns.
    fn value_part(&self, eps: &[&Episode], g: &Grid, cfg: &PpoConfig, ad: &Device) -> Result<Part> {
        let value = self.value.clone().fork(ad);
        let shape = [g.b, g.t];
        let x = ints(&g.x, shape, ad);
        let mask = floats(&g.mask, shape, ad);
        let vl = value_loss(
            value.values(x).add_scalar(self.value_bias),
            grid_field(g, eps, |e| &e.values, ad),
            grid_field(g, eps, |e| &e.returns, ad),
            mask,
            cfg.value_clip,
        );
        Ok(Part::Value(
            scalar(vl.clone()),
            GradientsParams::from_grads(vl.backward(), &value),
        ))
    }
}

/// A per-action field of the episodes laid out on the (B, T) grid, as a tensor on `ad`.
fn grid_field(g: &Grid, eps: &[&Episode], f: fn(&Episode) -> &[f32], ad: &Device) -> Tensor<2> {
    floats(&g.spread(eps.iter().map(|e| f(e))), [g.b, g.t], ad)
}

/// What one of a step's parallel passes returns.
enum Part {
    Surrogate(StepStats, GradientsParams),
    Ptx(f64, GradientsParams),
    Value(f64, GradientsParams),
}
