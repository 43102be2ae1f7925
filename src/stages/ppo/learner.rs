//! One PPO gradient step on a minibatch of episodes: the clipped surrogate (plus γ_ptx times
//! the pretraining loss) for the policy, the clipped value loss for the value model, each with
//! its own AdamW, learning rate and global-norm clipping. A non-finite loss or gradient skips
//! both updates (the stage's [`Guard`] counts it and stops the run after too many in a row).

use super::config::PpoConfig;
use super::episode::{Episode, Grid};
use super::loss::{policy_loss, value_loss};
use crate::data::batching::Batch;
use crate::model::{Lm, RewardModel};
use crate::rl::ppo_clip_stats;
use crate::train::clip::{clip_to_norm, read_with_norms, sum_squares};
use crate::train::guard::{Guard, Verdict};
use crate::train::nll::nll_backward;
use crate::train::recompute::{
    gather_rows, head_backward, spread_rows, trunk_backward, Head, HeadOut, Top,
};
use crate::util::shards;
use crate::util::tensors::{floats, ints};
use anyhow::{anyhow, Result};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use std::ops::Range;

/// The trained models (on the autodiff device) and their optimizers: the policy, and PPO's
/// value model (none under RLOO, whose baseline is the other samples of a prompt).
pub struct Learner {
    pub policy: Lm,
    pub policy_optim: ModuleOptimizer,
    pub critic: Option<Critic>,
}

/// PPO's value model and its optimizer.
pub struct Critic {
    pub model: RewardModel,
    /// Added to every value (not trained): the normalisation bias of the reward model the
    /// value model starts from, so that V₀ is that model's reward, bias included, as the
    /// scores it predicts are. Saved as the value checkpoint's `reward_bias`.
    pub bias: f32,
    pub optim: ModuleOptimizer,
}

/// One minibatch and how far to step on it.
pub struct Minibatch<'a> {
    pub eps: &'a [&'a Episode],
    /// A pretraining batch for the ptx term (present when `ptx_coef > 0`).
    pub ptx: Option<&'a Batch>,
    /// Learning rates of the policy and of the value model for this iteration.
    pub policy_lr: f64,
    pub value_lr: f64,
    /// This update's number among all of the run's, for the guard's log and its NaN-injection
    /// test hook.
    pub update: usize,
}

/// What one minibatch step measured (losses before the update).
#[derive(Debug, Clone, Copy, Default)]
pub struct StepStats {
    pub policy_loss: f64,
    /// NaN without a value model (RLOO).
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
    /// One gradient step of the policy (and the value model, if any) on a minibatch; `pad` is
    /// the padding token. Returns the models after the step, what it measured, and why the
    /// update was skipped when the guard skipped it.
    pub fn step(
        mut self,
        mb: &Minibatch<'_>,
        cfg: &PpoConfig,
        pad: u32,
        guard: &mut Guard,
        ad: &Device,
    ) -> Result<(Self, StepStats, Option<String>)> {
        let g = Grid::new(mb.eps, pad);
        // the policy's surrogate, its ptx term and the value loss are independent
        // forward/backward passes: on the CPU backend they run on parallel threads
        // (`util::shards`), each on its own fork of its model
        let mut kinds = vec![PartKind::Surrogate];
        kinds.extend(mb.ptx.map(|_| PartKind::Ptx));
        kinds.extend(self.critic.as_ref().map(|_| PartKind::Value));
        let parts = {
            let guard: &Guard = guard;
            shards::run(kinds.len(), ad, |i| -> Result<Part> {
                match kinds[i] {
                    PartKind::Surrogate => self.surrogate_part(mb, &g, cfg, guard, ad),
                    PartKind::Ptx => self.ptx_part(mb.ptx, cfg, ad),
                    PartKind::Value => self.value_part(mb.eps, &g, cfg, ad),
                }
            })?
        };
        let (read, pparts, mut vgrads) = sort_parts(parts, cfg.ptx_coef)?;
        if self.critic.is_some() && vgrads.is_none() {
            return Err(anyhow!("PPO step: the value pass is missing"));
        }
        let mut pgrads = shards::combine(&self.policy, pparts);
        let mut stats = self.read_stats_and_clip(read, (&mut pgrads, vgrads.as_mut()), cfg)?;
        // what the policy minimises (the surrogate plus γ_ptx times the pretraining loss) and
        // what the value model minimises, judged together with both gradients' norms
        let policy_objective = stats.policy_loss
            + if mb.ptx.is_some() {
                cfg.ptx_coef * stats.ptx_loss
            } else {
                0.0
            };
        let value_objective = if self.critic.is_some() {
            stats.value_loss
        } else {
            0.0
        };
        let verdict = guard.check(
            mb.update,
            policy_objective + value_objective,
            stats.policy_grad_norm + stats.value_grad_norm,
        )?;
        stats.applied = verdict == Verdict::Apply;
        if stats.applied {
            self.policy = self.policy_optim.step(mb.policy_lr, self.policy, pgrads);
            if let Some(mut c) = self.critic.take() {
                if let Some(vg) = vgrads {
                    c.model = c.optim.step(mb.value_lr, c.model, vg);
                }
                self.critic = Some(c);
            }
        }
        let skipped = match verdict {
            Verdict::Skip(msg) => Some(msg),
            Verdict::Apply => None,
        };
        Ok((self, stats, skipped))
    }

    /// Everything the step reports, read back in one transfer: the losses, entropy, log π_new
    /// (for the clip fraction and approx KL, computed on the host: the loss itself is the
    /// tensors') and both gradients' Σg², by which both gradients are then clipped.
    fn read_stats_and_clip(
        &self,
        r: Read,
        (pgrads, vgrads): (&mut GradientsParams, Option<&mut GradientsParams>),
        cfg: &PpoConfig,
    ) -> Result<StepStats> {
        let sur = r.sur;
        let n_logp = sur.logp_new.dims()[0];
        let (has_value, has_ptx) = (r.value_loss.is_some(), r.ptx_loss.is_some());
        let mut read = vec![sur.logp_new, sur.entropy, sur.loss];
        read.extend(r.value_loss);
        read.extend(r.ptx_loss);
        let mut squares = vec![sum_squares(&self.policy, &*pgrads)];
        if let (Some(c), Some(vg)) = (&self.critic, vgrads.as_deref()) {
            squares.push(sum_squares(&c.model, vg));
        }
        let (v, norms) = read_with_norms(read, squares)?;
        let (logp, rest) = v.split_at(n_logp);
        let mut rest = rest.iter().map(|&x| x as f64);
        let mut next = || rest.next().unwrap_or(f64::NAN);
        let diag = ppo_clip_stats(logp, &sur.logp_old, &sur.advantages, cfg.clip_eps);
        let mut stats = StepStats {
            entropy: next(),
            policy_loss: next(),
            clip_frac: diag.clip_frac as f64,
            approx_kl: diag.approx_kl as f64,
            ..Default::default()
        };
        stats.value_loss = if has_value { next() } else { f64::NAN };
        stats.ptx_loss = if has_ptx { next() } else { f64::NAN };
        stats.policy_grad_norm = norms[0];
        stats.value_grad_norm = norms.get(1).copied().unwrap_or(0.0);
        clip_to_norm(&self.policy, pgrads, stats.policy_grad_norm, cfg.grad_clip);
        if let (Some(c), Some(vg)) = (&self.critic, vgrads) {
            clip_to_norm(&c.model, vg, stats.value_grad_norm, cfg.grad_clip);
        }
        Ok(stats)
    }

    /// The clipped surrogate on a fork of the policy: its stats and gradients. Logits are
    /// computed at the action positions only, a chunk at a time (`train::recompute`).
    fn surrogate_part(
        &self,
        mb: &Minibatch<'_>,
        g: &Grid,
        cfg: &PpoConfig,
        guard: &Guard,
        ad: &Device,
    ) -> Result<Part> {
        let eps = mb.eps;
        let policy = self.policy.clone().fork(ad);
        // the action cells of the grid, row by row: the episodes' actions in order
        let at_host: Vec<i64> = (0..g.b * g.t)
            .filter(|&i| g.mask[i] > 0.0)
            .map(|i| i as i64)
            .collect();
        let n = at_host.len();
        let targets: Vec<i64> = at_host.iter().map(|&i| g.y[i as usize]).collect();
        let logp_old: Vec<f32> = eps.iter().flat_map(|e| e.logp_old.clone()).collect();
        let advantages: Vec<f32> = eps.iter().flat_map(|e| e.advantages.clone()).collect();
        let (old, adv) = (floats(&logp_old, [n], ad), floats(&advantages, [n], ad));
        let at = ints(&at_host, [n], ad);
        // each chunk's share of the mean over all n actions
        let chunk_loss = |r: Range<usize>, lp: Tensor<1>| {
            let m = r.len();
            let row = |v: &Tensor<1>| v.clone().slice([r.clone()]).reshape([1, m]);
            let l = policy_loss(
                lp.reshape([1, m]),
                row(&old),
                row(&adv),
                Tensor::ones([1, m], ad),
                cfg.clip_eps,
            );
            guard.poison(mb.update, l.mul_scalar(m as f32 / n as f32))
        };
        let top = |hidden: Tensor<3>| -> Result<Top<HeadOut>> {
            let h = gather_rows(hidden.detach(), at.clone());
            let head = (h, ints(&targets, [n], ad));
            // the rollouts were sampled at this temperature: π_new must be the same distribution
            let opts = Head::new(&policy, cfg.temperature, true);
            let (out, dh, grads) = head_backward(&policy, &policy, head, opts, chunk_loss)?;
            let d_hidden = spread_rows(dh, at.clone(), [g.b, g.t]);
            Ok(Top {
                out,
                d_hidden,
                grads,
            })
        };
        let x = ints(&g.x, [g.b, g.t], ad);
        let (out, grads) = trunk_backward(&policy, &policy, x, cfg.checkpoint_activations, top)?;
        Ok(Part::Surrogate(
            Box::new(Surrogate {
                logp_new: out.logp,
                entropy: out.entropy.mean(),
                loss: out.loss,
                logp_old,
                advantages,
            }),
            grads,
        ))
    }

    /// The pretraining NLL of a ptx batch on a fork of the policy (unweighted).
    fn ptx_part(&self, ptx: Option<&Batch>, cfg: &PpoConfig, ad: &Device) -> Result<Part> {
        let b = ptx.ok_or_else(|| anyhow!("ptx part without a ptx batch"))?;
        let policy = self.policy.clone().fork(ad);
        let (l, grads) = nll_backward(&policy, b, cfg.checkpoint_activations, |l| l, ad)?;
        Ok(Part::Ptx(l, grads))
    }

    /// The clipped squared error of the value model to the λ-returns.
    fn value_part(&self, eps: &[&Episode], g: &Grid, cfg: &PpoConfig, ad: &Device) -> Result<Part> {
        let critic = self
            .critic
            .as_ref()
            .ok_or_else(|| anyhow!("value pass without a value model"))?;
        let value = critic.model.clone().fork(ad);
        let shape = [g.b, g.t];
        let mask = floats(&g.mask, shape, ad);
        let top = |hidden: Tensor<3>| -> Result<Top<Tensor<1>>> {
            let c = hidden.dims()[2];
            let v = value.score.forward(hidden.clone().reshape([g.b * g.t, c]));
            let vl = value_loss(
                v.reshape(shape).add_scalar(critic.bias),
                grid_field(g, eps, |e| &e.values, ad),
                grid_field(g, eps, |e| &e.returns, ad),
                mask,
                cfg.value_clip,
            );
            let grads = vl.clone().backward();
            let d_hidden = Tensor::from_inner(
                hidden
                    .grad(&grads)
                    .ok_or_else(|| anyhow!("value pass: no gradient reached the trunk"))?,
            );
            let grads = GradientsParams::from_grads(grads, &value);
            Ok(Top {
                out: vl.detach(),
                d_hidden,
                grads,
            })
        };
        let x = ints(&g.x, shape, ad);
        let ckpt = cfg.checkpoint_activations;
        let (vl, grads) = trunk_backward(&value, &value.transformer, x, ckpt, top)?;
        Ok(Part::Value(vl, grads))
    }
}

/// The step's passes sorted: what to read, the policy's gradients with their weights (1 for
/// the surrogate, γ_ptx for ptx), the value model's gradients.
#[allow(clippy::type_complexity)]
fn sort_parts(
    parts: Vec<Part>,
    ptx_coef: f64,
) -> Result<(Read, Vec<(GradientsParams, f64)>, Option<GradientsParams>)> {
    let (mut sur, mut ptx_loss, mut value) = (None, None, None);
    let mut pparts = Vec::new();
    for part in parts {
        match part {
            Part::Surrogate(s, grads) => {
                sur = Some(s);
                pparts.push((grads, 1.0));
            }
            Part::Ptx(loss, grads) => {
                ptx_loss = Some(loss);
                pparts.push((grads, ptx_coef));
            }
            Part::Value(loss, grads) => value = Some((loss, grads)),
        }
    }
    let sur = sur.ok_or_else(|| anyhow!("PPO step: the surrogate pass is missing"))?;
    let (value_loss, vgrads) = value.unzip();
    let read = Read {
        sur,
        value_loss,
        ptx_loss,
    };
    Ok((read, pparts, vgrads))
}

/// A per-action field of the episodes laid out on the (B, T) grid, as a tensor on `ad`.
fn grid_field(g: &Grid, eps: &[&Episode], f: fn(&Episode) -> &[f32], ad: &Device) -> Tensor<2> {
    floats(&g.spread(eps.iter().map(|e| f(e))), [g.b, g.t], ad)
}

/// What the surrogate pass leaves to read (on the device) and the host numbers it is compared
/// with.
struct Surrogate {
    /// log π_new of every action, the episodes' in order, (N,).
    logp_new: Tensor<1>,
    entropy: Tensor<1>,
    loss: Tensor<1>,
    logp_old: Vec<f32>,
    advantages: Vec<f32>,
}

/// The step's values still on the device, to be read at once.
struct Read {
    sur: Box<Surrogate>,
    value_loss: Option<Tensor<1>>,
    ptx_loss: Option<Tensor<1>>,
}

/// The parallel passes of a step.
#[derive(Clone, Copy)]
enum PartKind {
    Surrogate,
    Ptx,
    Value,
}

/// What one of a step's parallel passes returns: its losses still on the device (the step reads
/// them all at once) and its gradients.
enum Part {
    Surrogate(Box<Surrogate>, GradientsParams),
    Ptx(Tensor<1>, GradientsParams),
    Value(Tensor<1>, GradientsParams),
}
