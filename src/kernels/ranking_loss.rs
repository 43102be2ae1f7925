//! The reward model's K-wise ranking loss (InstructGPT eq. 1) over a ragged batch of prompts:
//!
//! `L = (1/P) Σ_p −1/C(K_p,2) Σ_{i<j} log σ(r_{p,i} − r_{p,j})`,
//!
//! rewards prompt-major and best first within a prompt. [`ranking_loss`] runs the one-pass WGSL
//! kernel (`shaders/ranking_loss.wgsl`) on wgpu devices and [`ranking_loss_reference`], the same
//! loss in plain burn ops, elsewhere; the two are compared (values and gradients) in
//! `tests/rank_kernel.rs`. [`bench_rank_loss`] times one against the other (`rlhf bench rank-loss`).

use super::rank_ext::RankLossExt;
use anyhow::{bail, ensure, Context, Result};
use burn::backend::Dispatch;
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::{DType, Distribution};
use std::time::Instant;

/// Smallest and largest number of ranked responses per prompt.
pub const K_RANGE: std::ops::RangeInclusive<usize> = 2..=9;

/// Checks `ks` against `n` rewards: at least one prompt, each K in 2..=9, Σ K = N.
pub fn validate(n: usize, ks: &[usize]) -> Result<()> {
    ensure!(!ks.is_empty(), "ranking loss: no prompts (ks is empty)");
    if let Some((p, k)) = ks.iter().enumerate().find(|(_, k)| !K_RANGE.contains(k)) {
        bail!(
            "ranking loss: prompt {p} has K = {k} responses; K must be in {}..={}",
            K_RANGE.start(),
            K_RANGE.end()
        );
    }
    let total: usize = ks.iter().sum();
    ensure!(
        total == n,
        "ranking loss: the ks sum to {total} but there are {n} rewards"
    );
    Ok(())
}

pub use super::is_kernel_device;

/// The ranking loss. rewards (N,) prompt-major, best first within a prompt; ks: K of each
/// prompt (Σ ks = N, each in 2..=9). Returns the scalar loss as shape (1,).
///
/// On wgpu devices this is the WGSL kernel (one launch for loss and dL/dr); elsewhere the
/// reference twin. Differentiable either way: on autodiff devices gradients flow into `rewards`.
pub fn ranking_loss(rewards: Tensor<1>, ks: &[usize]) -> Result<Tensor<1>> {
    let [n] = rewards.dims();
    validate(n, ks)?;
    if !is_kernel_device(&rewards.device()) {
        return ranking_loss_reference(rewards, ks);
    }
    ensure!(
        rewards.dtype() == DType::F32,
        "ranking loss kernel: rewards must be f32, got {:?}",
        rewards.dtype()
    );
    let ks: Vec<u32> = ks.iter().map(|&k| k as u32).collect();
    Ok(Tensor::from_dispatch(Dispatch::rank_loss(
        rewards.into_dispatch(),
        ks,
    )))
}

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
    let better = Tensor::<1, Int>::from_data(TensorData::new(better, [m]), &device); // (M,)
    let worse = Tensor::<1, Int>::from_data(TensorData::new(worse, [m]), &device); // (M,)
    let weight = Tensor::<1>::from_data(TensorData::new(weight, [m]), &device); // (M,)
    let margin = rewards.clone().select(0, better) - rewards.select(0, worse); // (M,)
    Ok((stable_softplus(margin.neg()) * weight).sum()) // (1,)
}

type LossFn = fn(Tensor<1>, &[usize]) -> Result<Tensor<1>>;

/// Seconds per forward + backward of `f` (mean of `iters`), rewards (N,) fixed and requiring
/// grad; each step reads the reward gradient back, which waits for the device.
fn time_fwd_bwd(rewards: &Tensor<1>, ks: &[usize], iters: usize, f: LossFn) -> Result<f64> {
    let t = Instant::now();
    for _ in 0..iters {
        let loss = f(rewards.clone(), ks)?; // (1,)
        let grads = loss.backward();
        let g = rewards
            .grad(&grads)
            .context("no gradient reached the rewards")?; // (N,)
        crate::train::tensors::to_vec(g)?;
    }
    Ok(t.elapsed().as_secs_f64() / iters as f64)
}

/// `rlhf bench rank-loss`: 64 prompts × K = 9, forward + backward, WGSL kernel vs the reference
/// twin in burn ops on the same device (autodiff on). Needs a wgpu device. Rounds alternate
/// between the two and the best round of each is reported, which keeps lavapipe's jitter and
/// one-off pipeline compilation out of the ratio.
pub fn bench_rank_loss(device: &Device) -> Result<()> {
    ensure!(
        is_kernel_device(device),
        "bench rank-loss compares the WGSL kernel with burn ops and needs a wgpu device; \
         try --device wgpu"
    );
    let ks = vec![9usize; 64];
    let n: usize = ks.iter().sum();
    let (rounds, iters) = (5, 40);
    let device = device.clone().autodiff();
    let rewards = Tensor::<1>::random([n], Distribution::Normal(0.0, 3.0), &device).require_grad();
    let before = super::kernel_launches();
    time_fwd_bwd(&rewards, &ks, 5, ranking_loss)?; // warm-up
    ensure!(
        super::kernel_launches() > before,
        "the kernel path did not launch the WGSL kernel"
    );
    time_fwd_bwd(&rewards, &ks, 5, ranking_loss_reference)?; // warm-up
    let (mut kernel, mut reference) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        kernel = kernel.min(time_fwd_bwd(&rewards, &ks, iters, ranking_loss)?);
        reference = reference.min(time_fwd_bwd(&rewards, &ks, iters, ranking_loss_reference)?);
    }
    println!(
        "rank-loss, 64 prompts x K=9 (N={n}, 2304 pairs), forward+backward+readback, \
         best of {rounds} rounds x {iters}:"
    );
    println!("  WGSL kernel     {:9.3} ms", kernel * 1e3);
    println!("  burn reference  {:9.3} ms", reference * 1e3);
    println!("  ratio (reference / kernel) {:.2}x", reference / kernel);
    println!(
        "{{\"bench\":\"rank-loss\",\"prompts\":64,\"k\":9,\"kernel_ms\":{:.3},\"reference_ms\":{:.3},\"speedup\":{:.2}}}",
        kernel * 1e3,
        reference * 1e3,
        reference / kernel
    );
    Ok(())
}
