//! Language-modelling losses: token log-probabilities and masked cross-entropy.

use burn::prelude::*;

/// Log-probability of each target token: the fused kernel on the CPU backend, its composed
/// twin elsewhere (see [`crate::kernels::token_logprob`]). logits (B, T, V), targets (B, T) →
/// (B, T)
pub fn token_logprobs(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
    crate::kernels::token_logprob::token_logprobs(logits, targets)
}

/// Logits of the distribution sampled at `temperature` (softmax(l/T)): PPO computes every
/// log-probability of its rollouts (π_old, π_new, the reference's) from these, so the ratio and
/// the KL are of the distribution the actions were drawn from. T = 1 returns `logits` as is.
pub fn tempered(logits: Tensor<3>, temperature: f32) -> Tensor<3> {
    if temperature == 1.0 {
        logits
    } else {
        logits.div_scalar(temperature)
    }
}

/// Mean negative log-likelihood over positions where `weights` is 1 (0 elsewhere).
/// logits (B, T, V), targets (B, T), weights (B, T) → scalar (1,)
///
/// This is how SFT counts response tokens only: prompt and padding positions get weight 0, so
/// their targets cannot change the loss or its gradient.
pub fn masked_nll(logits: Tensor<3>, targets: Tensor<2, Int>, weights: Tensor<2>) -> Tensor<1> {
    let lp = token_logprobs(logits, targets); // (B, T)
    let count = weights.clone().sum().clamp_min(1.0);
    (lp * weights).sum().neg().div(count)
}
