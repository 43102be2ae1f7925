//! DPO's loss on tensors: the reward model's ranking loss (`kernels::ranking_loss`: one WGSL
//! pass on wgpu, its burn-ops twin elsewhere) of the implicit rewards `β·(log π − log π_ref)`.
//! With winner w above loser l, `r_w − r_l = β·m` with m the log-ratio margin, so the ranking
//! loss `−1/C(K,2) Σ log σ(r_w − r_l)`, averaged over prompts, is DPO's loss over all pairs;
//! `tests/training/dpo.rs` checks it (value and gradient) against `rl::dpo`.

use anyhow::Result;
use burn::prelude::*;

/// The DPO loss of a batch of rankings.
/// # Shapes
/// - logp: (N,) sequence log-probabilities under the policy (with gradients), prompt-major,
///   best first within a prompt; logp_ref: (N,) the reference's (constants)
/// - ks: K of each prompt (Σ ks = N, each in 2..=9)
/// - returns the loss (1,)
pub fn dpo_loss(
    logp: Tensor<1>,
    logp_ref: Tensor<1>,
    ks: &[usize],
    beta: f64,
) -> Result<Tensor<1>> {
    let rewards = (logp - logp_ref.detach()).mul_scalar(beta); // (N,) implicit rewards
    crate::kernels::ranking_loss::ranking_loss(rewards, ks)
}
