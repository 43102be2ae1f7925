//! The reference twin of the ranking-loss kernel in plain (differentiable) burn ops: the loss off
//! wgpu, and what `tests/rank_kernel.rs` compares the kernel's values and gradients against.

use super::validate;
use crate::util::tensors::{floats, ints};
use anyhow::Result;
use burn::prelude::*;
use burn::tensor::activation::relu;

/// Stable softplus from burn ops: `relu(x) + log1p(exp(x − 2·relu(x)))`.
///
/// `x − 2·relu(x)` is `−|x|`, so `exp` never overflows; written this way (not with `abs`) its
/// gradient is right at x = 0 too (σ(0) = ½), whichever side burn's relu takes there.
pub fn stable_softplus(x: Tensor<1>) -> Tensor<1> {
    let r = relu(x.clone());
    r.clone() + (x - r.mul_scalar(2.0)).exp().log1p()
}

/// The pairs of the ranking loss: (better index, worse index, weight 1/(P·C(K_p,2))).
fn pairs(ks: &[usize]) -> (Vec<i64>, Vec<i64>, Vec<f32>) {
    let (mut better, mut worse, mut weight) = (vec![], vec![], vec![]);
    let p = ks.len() as f32;
    let mut start = 0;
    for &k in ks {
        let w = 1.0 / (p * (k * (k - 1) / 2) as f32);
        for i in 0..k {
            for j in i + 1..k {
                better.push((start + i) as i64);
                worse.push((start + j) as i64);
                weight.push(w);
            }
        }
        start += k;
    }
    (better, worse, weight)
}

/// The reference twin of the kernel in plain (differentiable) burn ops: gather both sides of
/// every pair, `softplus(r_worse − r_better)` (= −log σ(r_better − r_worse)), weighted sum.
/// Same contract as [`ranking_loss`]; returns (1,).
pub fn ranking_loss_reference(rewards: Tensor<1>, ks: &[usize]) -> Result<Tensor<1>> {
    let [n] = rewards.dims();
    validate(n, ks)?;
    let device = rewards.device();
    let (better, worse, weight) = pairs(ks);
    let m = weight.len();
    let better = ints(&better, [m], &device); // (M,)
    let worse = ints(&worse, [m], &device); // (M,)
    let weight = floats(&weight, [m], &device); // (M,)
    let margin = rewards.clone().select(0, better) - rewards.select(0, worse); // (M,)
    Ok((stable_softplus(margin.neg()) * weight).sum()) // (1,)
}
