//! The InstructGPT ranking loss on a batch of rewards, in plain burn ops (autodiff-ready).
//!
//! rewards (N,) prompt-major, best first; ks = K of each prompt. Loss = mean over prompts of
//! −1/C(K,2) Σ_{i<j} log σ(r_i − r_j), with −log σ(x) = softplus(−x) computed stably.

use anyhow::{bail, Result};
use burn::prelude::*;
use burn::tensor::activation::relu;

pub fn ranking_loss(rewards: Tensor<1>, ks: &[usize]) -> Result<Tensor<1>> {
    let n = rewards.dims()[0];
    if ks.iter().sum::<usize>() != n || ks.iter().any(|&k| k < 2) {
        bail!("ranking loss: ks {ks:?} do not split {n} rewards into groups of at least 2");
    }
    let (mut win, mut lose, mut w) = (Vec::new(), Vec::new(), Vec::new());
    let mut off = 0;
    let p = ks.len() as f32;
    for &k in ks {
        let c = (k * (k - 1) / 2) as f32;
        for i in 0..k {
            for j in i + 1..k {
                win.push((off + i) as i64);
                lose.push((off + j) as i64);
                w.push(1.0 / (c * p));
            }
        }
        off += k;
    }
    let device = rewards.device();
    let m = win.len();
    let wi = Tensor::<1, Int>::from_data(TensorData::new(win, [m]), &device);
    let li = Tensor::<1, Int>::from_data(TensorData::new(lose, [m]), &device);
    let wt = Tensor::<1>::from_data(TensorData::new(w, [m]), &device);
    let d = rewards.clone().select(0, wi) - rewards.select(0, li); // (M,) r_w − r_l
    let nx = d.neg();
    let softplus = relu(nx.clone()) + nx.abs().neg().exp().add_scalar(1.0).log();
    Ok((softplus * wt).sum())
}
