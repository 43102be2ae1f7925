//! `rlhf bench rank-loss`: times the WGSL ranking-loss kernel against its reference twin, forward
//! and backward, on the same wgpu device.

use super::{is_kernel_device, ranking_loss, ranking_loss_reference};
use anyhow::{ensure, Context, Result};
use burn::prelude::*;
use burn::tensor::Distribution;
use std::time::Instant;

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
        crate::util::tensors::to_vec(g)?;
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
    let before = super::wgsl_launches();
    time_fwd_bwd(&rewards, &ks, 5, ranking_loss)?; // warm-up
    ensure!(
        super::wgsl_launches() > before,
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
        "{{\"bench\":\"rank-loss\",\"prompts\":64,\"k\":9,\
         \"kernel_ms\":{:.3},\"reference_ms\":{:.3},\"speedup\":{:.2}}}",
        kernel * 1e3,
        reference * 1e3,
        reference / kernel
    );
    Ok(())
}
