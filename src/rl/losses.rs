//! PPO clipped losses (policy and value), their diagnostics, the analytic policy-loss
//! gradient, and a numerically stable entropy from logits.
//!
//! Formulas follow TRL's `PPOTrainer.loss`. Inputs are flat `[N]` slices over all
//! (unmasked) response tokens of a minibatch; every mean is over those `N` tokens,
//! accumulated in `f64`. An empty input yields zeros rather than NaN.

/// Output of [`ppo_policy_loss`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyLossOut {
    /// `mean_t max(−A_t·ρ_t, −A_t·clip(ρ_t, 1−ε, 1+ε))`, to be minimised.
    pub loss: f32,
    /// Fraction of tokens where the clipped term is strictly larger (clipping active).
    pub clip_frac: f32,
    /// `mean_t 0.5·(logp_new − logp_old)²` (the "k2" estimator, as TRL's `approxkl`).
    pub approx_kl: f32,
}

/// The diagnostics of the clipped surrogate, without the loss: what a training step reports
/// beside the loss its autodiff computed ([`ppo_clip_stats`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipStats {
    /// Fraction of tokens where the clipped term is strictly larger (clipping active).
    pub clip_frac: f32,
    /// `mean_t 0.5·(logp_new − logp_old)²` (the "k2" estimator, as TRL's `approxkl`).
    pub approx_kl: f32,
}

/// Output of [`ppo_value_loss`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValueLossOut {
    /// `0.5 · mean_t max((v − R)², (clip(v, v_old − c, v_old + c) − R)²)`.
    pub loss: f32,
    /// Fraction of tokens where the clipped squared error is strictly larger.
    pub clip_frac: f32,
}

fn mean(sum: f64, n: usize) -> f32 {
    if n == 0 {
        0.0
    } else {
        (sum / n as f64) as f32
    }
}

/// Per-token `(ratio, unclipped term, clipped term)` of the PPO surrogate, in `f64`.
fn surrogate_terms(logp_new: f32, logp_old: f32, adv: f32, clip_eps: f32) -> (f64, f64, f64) {
    let ratio = (f64::from(logp_new) - f64::from(logp_old)).exp();
    let a = f64::from(adv);
    let eps = f64::from(clip_eps);
    let pg1 = -a * ratio;
    let pg2 = -a * ratio.clamp(1.0 - eps, 1.0 + eps);
    (ratio, pg1, pg2)
}

/// Clipped PPO surrogate policy loss.
///
/// * `logp_new`: `[N]` log-probs of the sampled tokens under the current policy.
/// * `logp_old`: `[N]` log-probs of the same tokens recorded at rollout time.
/// * `advantages`: `[N]` (usually whitened) advantages from [`super::gae`].
/// * `clip_eps`: ε, e.g. 0.2.
///
/// With `ρ = exp(logp_new − logp_old)`, returns the mean over tokens of
/// `max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε))` (the pessimistic bound, negated for minimisation),
/// `clip_frac` = fraction of tokens where the clipped term is strictly larger, and
/// `approx_kl = mean 0.5·(logp_new − logp_old)²` (k2 estimator of KL(old ‖ new),
/// matching TRL's `approxkl`; always ≥ 0).
pub fn ppo_policy_loss(
    logp_new: &[f32],
    logp_old: &[f32],
    advantages: &[f32],
    clip_eps: f32,
) -> PolicyLossOut {
    debug_assert_eq!(
        logp_new.len(),
        advantages.len(),
        "ppo_policy_loss: length mismatch"
    );
    let mut loss = 0.0f64;
    for ((&new, &old), &adv) in logp_new.iter().zip(logp_old).zip(advantages) {
        let (_, pg1, pg2) = surrogate_terms(new, old, adv, clip_eps);
        loss += pg1.max(pg2);
    }
    let diag = ppo_clip_stats(logp_new, logp_old, advantages, clip_eps);
    PolicyLossOut {
        loss: mean(loss, logp_new.len()),
        clip_frac: diag.clip_frac,
        approx_kl: diag.approx_kl,
    }
}

/// The clip fraction and approximate KL of [`ppo_policy_loss`], without the loss: for a step
/// whose loss (and gradient) the tensors computed.
pub fn ppo_clip_stats(
    logp_new: &[f32],
    logp_old: &[f32],
    advantages: &[f32],
    clip_eps: f32,
) -> ClipStats {
    debug_assert_eq!(
        logp_new.len(),
        logp_old.len(),
        "ppo_clip_stats: length mismatch"
    );
    debug_assert_eq!(
        logp_new.len(),
        advantages.len(),
        "ppo_clip_stats: length mismatch"
    );
    let n = logp_new.len();
    let (mut clipped, mut kl) = (0usize, 0.0f64);
    for ((&new, &old), &adv) in logp_new.iter().zip(logp_old).zip(advantages) {
        let (_, pg1, pg2) = surrogate_terms(new, old, adv, clip_eps);
        if pg2 > pg1 {
            clipped += 1;
        }
        let d = f64::from(new) - f64::from(old);
        kl += 0.5 * d * d;
    }
    ClipStats {
        clip_frac: mean(clipped as f64, n),
        approx_kl: mean(kl, n),
    }
}

/// Gradient of [`ppo_policy_loss`]`.loss` w.r.t. each `logp_new[t]`, shape `[N]`.
///
/// Where the unclipped term is active (`−A·ρ ≥ −A·clip(ρ)`, which includes every token
/// with `ρ` inside `[1−ε, 1+ε]`), `∂loss/∂logp_new[t] = −A_t·ρ_t / N` (since
/// `∂ρ/∂logp_new = ρ`). Where the clipped term is strictly larger, the clamp is
/// saturated and the gradient is 0: this is how PPO stops pushing the ratio further.
/// Ties take the unclipped branch. A reference for checking tensor autodiff.
pub fn ppo_policy_loss_grad(
    logp_new: &[f32],
    logp_old: &[f32],
    advantages: &[f32],
    clip_eps: f32,
) -> Vec<f32> {
    debug_assert_eq!(
        logp_new.len(),
        logp_old.len(),
        "ppo_policy_loss_grad: length mismatch"
    );
    debug_assert_eq!(
        logp_new.len(),
        advantages.len(),
        "ppo_policy_loss_grad: length mismatch"
    );
    let n = logp_new.len() as f64;
    logp_new
        .iter()
        .zip(logp_old)
        .zip(advantages)
        .map(|((&new, &old), &adv)| {
            let (ratio, pg1, pg2) = surrogate_terms(new, old, adv, clip_eps);
            if pg2 > pg1 {
                0.0
            } else {
                (-f64::from(adv) * ratio / n) as f32
            }
        })
        .collect()
}

/// Clipped value-function loss.
///
/// * `values_new`: `[N]` current value-head predictions.
/// * `values_old`: `[N]` value predictions recorded at rollout time.
/// * `returns`: `[N]` targets from [`super::gae`] (`advantages + values_old`).
/// * `clip_range`: `c`, how far `values_new` may move from `values_old` (e.g. 0.2).
///
/// Returns `loss = 0.5 · mean max((v − R)², (clip(v, v_old − c, v_old + c) − R)²)` and
/// `clip_frac` = fraction of tokens where the clipped squared error is strictly larger.
/// Taking the max makes the update pessimistic, like the policy clip.
pub fn ppo_value_loss(
    values_new: &[f32],
    values_old: &[f32],
    returns: &[f32],
    clip_range: f32,
) -> ValueLossOut {
    debug_assert_eq!(
        values_new.len(),
        values_old.len(),
        "ppo_value_loss: length mismatch"
    );
    debug_assert_eq!(
        values_new.len(),
        returns.len(),
        "ppo_value_loss: length mismatch"
    );
    let n = values_new.len();
    let c = f64::from(clip_range);
    let (mut loss, mut clipped) = (0.0f64, 0usize);
    for ((&v, &v_old), &ret) in values_new.iter().zip(values_old).zip(returns) {
        let (v, v_old, ret) = (f64::from(v), f64::from(v_old), f64::from(ret));
        let v_clipped = v.clamp(v_old - c, v_old + c);
        let l1 = (v - ret).powi(2);
        let l2 = (v_clipped - ret).powi(2);
        loss += l1.max(l2);
        if l2 > l1 {
            clipped += 1;
        }
    }
    ValueLossOut {
        loss: 0.5 * mean(loss, n),
        clip_frac: mean(clipped as f64, n),
    }
}

/// Entropy (nats) of `softmax(logits)` over one vocabulary row, shape `[V]`.
///
/// Computed stably as `H = −Σ p_i·(l_i − lse)` with `lse = m + ln Σ exp(l_i − m)`,
/// `m = max l`, so huge logits do not overflow and `−∞` logits (masked tokens)
/// contribute 0. Uniform logits give `ln V`. Empty input returns 0.
pub fn entropy_from_logits(logits: &[f32]) -> f32 {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !m.is_finite() {
        return 0.0;
    }
    let m = f64::from(m);
    let z: f64 = logits.iter().map(|&l| (f64::from(l) - m).exp()).sum();
    let lse = m + z.ln();
    let h: f64 = logits
        .iter()
        .map(|&l| {
            let log_p = f64::from(l) - lse;
            let p = log_p.exp();
            if p > 0.0 {
                -p * log_p
            } else {
                0.0
            }
        })
        .sum();
    h as f32
}
