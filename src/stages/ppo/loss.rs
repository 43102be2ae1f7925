//! PPO's losses as tensor expressions over a (B, T) grid with an action mask, so autodiff
//! gives their gradients. They compute exactly what the pure functions in `crate::rl` compute
//! on host slices (tests compare values and gradients).

use burn::prelude::*;

/// Masked mean: Σ x·mask / max(Σ mask, 1). (B, T) → (1,)
fn masked_mean(x: Tensor<2>, mask: Tensor<2>) -> Tensor<1> {
    let n = mask.clone().sum().clamp_min(1.0);
    (x * mask).sum().div(n)
}

/// Clipped surrogate: mean over actions of `max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε))`,
/// `ρ = exp(logp_new − logp_old)`. All inputs (B, T); only `logp_new` carries gradients.
pub fn policy_loss(
    logp_new: Tensor<2>,
    logp_old: Tensor<2>,
    adv: Tensor<2>,
    mask: Tensor<2>,
    clip_eps: f32,
) -> Tensor<1> {
    // masked positions get ratio exp(0)=1 so padding never produces inf·0
    let ratio = ((logp_new - logp_old) * mask.clone()).exp();
    let pg1 = adv.clone().neg() * ratio.clone();
    let pg2 = adv.neg() * ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps);
    masked_mean(pg1.max_pair(pg2), mask)
}

/// Clipped value loss: `0.5 · mean max((v − R)², (v_old + clip(v − v_old, ±c) − R)²)`.
pub fn value_loss(
    v_new: Tensor<2>,
    v_old: Tensor<2>,
    returns: Tensor<2>,
    mask: Tensor<2>,
    clip: f32,
) -> Tensor<1> {
    let v_clipped = v_old.clone() + (v_new.clone() - v_old).clamp(-clip, clip);
    let l1 = (v_new - returns.clone()).powi_scalar(2);
    let l2 = (v_clipped - returns).powi_scalar(2);
    masked_mean(l1.max_pair(l2), mask).mul_scalar(0.5)
}
