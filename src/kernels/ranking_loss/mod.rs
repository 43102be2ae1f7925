//! The reward model's K-wise ranking loss (InstructGPT eq. 1) over a ragged batch of prompts:
//!
//! `L = (1/P) Σ_p −1/C(K_p,2) Σ_{i<j} log σ(r_{p,i} − r_{p,j})`,
//!
//! rewards prompt-major and best first within a prompt. [`ranking_loss`] runs the one-pass WGSL
//! kernel (`shaders/ranking_loss.wgsl`) on wgpu devices and [`ranking_loss_reference`], the same
//! loss in plain burn ops, elsewhere; the two are compared (values and gradients) in
//! `tests/rank_kernel.rs`. [`bench_rank_loss`] times one against the other
//! (`rlhf bench rank-loss`).
//!
//! Why an extension and not burn ops: the loss over ragged K-wise rankings is a gather of
//! C(K,2) pairs per prompt followed by several elementwise ops and a reduction, each a kernel
//! launch and a tape entry; the kernel does forward and dL/dr in one launch and the backward is
//! a single broadcast multiply.
//!
//! Parts (the same for every kernel): this entry and the extension trait [`RankLossExt`];
//! `launch.rs` (the WGSL kernel on CubeCL/wgpu; one workgroup size, so no separate plan);
//! `backward.rs` (the autodiff backward step); `reference.rs` (the reference twin in plain burn
//! ops); `bench.rs` (`rlhf bench rank-loss`).

mod backward;
mod bench;
mod launch;
mod reference;

pub use bench::bench_rank_loss;
pub use launch::{source, wgsl_launches};
pub use reference::{ranking_loss_reference, stable_softplus};

use anyhow::{bail, ensure, Result};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, TensorMetadata};
use burn::backend::{Dispatch, Shape, Slice};
use burn::prelude::*;
use burn::tensor::DType;

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

/// Shape of the packed kernel output: (N + P,) for rewards (N,) and P prompts.
fn packed_shape(rewards: &Shape, ks: &[u32]) -> Shape {
    Shape::new([rewards.num_elements() + ks.len()])
}

#[backend_extension(Autodiff, Cube, Fusion)]
pub trait RankLossExt: Backend {
    /// rewards (N,), ks (P,) with Σ ks = N → packed (N + P,): `[dL/dr (N) | loss_p / P (P)]`.
    /// Not differentiable (its first half *is* the gradient); see [`RankLossExt::rank_loss`].
    #[fusion(dtype = rewards, shape = packed_shape(rewards, ks))]
    fn rank_loss_packed(rewards: FloatTensor<Self>, ks: Vec<u32>) -> FloatTensor<Self>;

    /// rewards (N,) → loss (1,). Autodiff overrides this with a backward step.
    #[fusion(default)]
    fn rank_loss(rewards: FloatTensor<Self>, ks: Vec<u32>) -> FloatTensor<Self> {
        let n = rewards.shape().num_elements();
        let p = ks.len();
        let packed = Self::rank_loss_packed(rewards, ks); // (N + P,)
        Self::float_sum(Self::float_slice(packed, &[Slice::from(n..n + p)])) // (1,)
    }
}
