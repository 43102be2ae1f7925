//! One PPO gradient step on a minibatch of episodes: the clipped surrogate (plus γ_ptx times
//! the pretraining loss) for the policy, the clipped value loss for the value model, each with
//! its own AdamW, learning rate and global-norm clipping. A non-finite loss or gradient skips
//! both updates (the stage's [`Guard`] counts it and stops the run after too many in a row).

use super::config::PpoConfig;
use super::episode::{Episode, Grid};
use super::loss::{entropy, policy_loss, value_loss};
use crate::data::batching::Batch;
use crate::model::loss::{masked_nll, token_logprobs};
use crate::model::{Gpt, RewardModel};
use crate::rl::ppo_policy_loss;
use crate::train::clip::clip_global_norm;
use crate::train::guard::{Guard, Verdict};
use crate::train::tensors::{batch_tensors, floats, ints, scalar, to_vec};
use anyhow::Result;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

/// The two trained models (on the autodiff device) and their optimizers.
pub struct Learner {
    pub policy: Gpt,
    pub value: RewardModel,
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
        let shape = [g.b, g.t];
        let x = ints(&g.x, shape, ad);
        let y = ints(&g.y, shape, ad);
        let mask = floats(&g.mask, shape, ad);
        let spread =
            |f: fn(&Episode) -> &[f32]| floats(&g.spread(eps.iter().map(|e| f(e))), shape, ad);
        let logp_old = spread(|e| &e.logp_old);
        let adv = spread(|e| &e.advantages);

        // policy: clipped surrogate (+ γ_ptx · pretraining NLL)
        let logits = self.policy.forward(x.clone()); // (B, T, V)
        let ent = scalar(entropy(logits.clone(), mask.clone()));
        let logp_new = token_logprobs(logits, y); // (B, T)
        let new_host: Vec<f32> = g.gather(&to_vec(logp_new.clone().detach())?).concat();
        let old_host: Vec<f32> = eps.iter().flat_map(|e| e.logp_old.clone()).collect();
        let adv_host: Vec<f32> = eps.iter().flat_map(|e| e.advantages.clone()).collect();
        let diag = ppo_policy_loss(&new_host, &old_host, &adv_host, cfg.clip_eps);
        let pl = policy_loss(logp_new, logp_old, adv, mask.clone(), cfg.clip_eps);
        let mut stats = StepStats {
            policy_loss: scalar(pl.clone()),
            clip_frac: diag.clip_frac as f64,
            approx_kl: diag.approx_kl as f64,
            entropy: ent,
            ptx_loss: f64::NAN,
            ..Default::default()
        };
        let mut total = pl;
        if let Some(b) = ptx {
            let (px, py, pw) = batch_tensors(b, ad);
            let l = masked_nll(self.policy.forward(px), py, pw);
            stats.ptx_loss = scalar(l.clone());
            total = total + l.mul_scalar(cfg.ptx_coef);
        }
        let total = guard.poison(update, total);
        let total_v = scalar(total.clone());
        let mut pgrads = GradientsParams::from_grads(total.backward(), &self.policy);
        stats.policy_grad_norm = clip_global_norm(&self.policy, &mut pgrads, cfg.grad_clip);

        // value model: clipped squared error to the λ-returns
        let v_old = spread(|e| &e.values);
        let returns = spread(|e| &e.returns);
        let vl = value_loss(self.value.values(x), v_old, returns, mask, cfg.value_clip);
        stats.value_loss = scalar(vl.clone());
        let mut vgrads = GradientsParams::from_grads(vl.backward(), &self.value);
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
}
