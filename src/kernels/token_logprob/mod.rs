//! The log-probability of each target token, `log_softmax(logits)[target]`, as one fused pass per
//! row: a WGSL kernel on wgpu, a row loop on the CPU backend.
//!
//! Composed of burn ops this is a log-softmax over the whole (B, T, V) logits (max, subtract,
//! exp, sum, log, subtract: a pass and a (B, T, V) allocation each, with a scalar libm `exp` per
//! logit), a gather, and in the backward a scatter and the softmax's gradient over (B, T, V)
//! again. The kernel reads each row twice (max, then Σ e^(l − max)) and writes one number; the
//! backward writes `dl = g·(onehot(target) − e^(l − lse))` in one pass, from the saved log-sum-exp.
//!
//! On wgpu the kernels take one dispatch each way where the composed ops take about fifteen.
//!
//! Parts (the same for every kernel): this entry and the extension trait [`TokenLogprobExt`];
//! `launch.rs` (the WGSL kernels on CubeCL/wgpu); `cpu.rs` (the CPU implementation);
//! `backward.rs` (the autodiff step); `reference.rs` (the reference twin in burn ops).

mod backward;
mod cpu;
mod launch;
mod reference;

pub use cpu::cpu_launches;
pub use launch::{sources, wgsl_launches};
pub use reference::token_logprobs_reference;

use super::cpu::is_cpu_kernel_device;
use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch};
use burn::prelude::*;
use burn::tensor::DType;

/// The fused token log-probability; implemented for wgpu in `launch.rs` and for the CPU (Flex)
/// in `cpu.rs`, differentiable (in the logits) through the `Autodiff` implementation in
/// `backward.rs`.
#[backend_extension(Autodiff, Cube, Fusion, Flex)]
pub trait TokenLogprobExt: Backend {
    /// logits (N, V), targets (N) token ids as floats → (log-probabilities (N), log-sum-exp (N)).
    #[fusion(meta = fwd_meta)]
    fn token_logprob_fwd(
        logits: FloatTensor<Self>,
        targets: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// logits (N, V), targets (N), lse (N), upstream gradient (N) → d logits (N, V).
    #[fusion(meta = bwd_meta)]
    fn token_logprob_bwd(
        logits: FloatTensor<Self>,
        targets: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        d_out: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

fn fwd_meta(_logits: &TensorSpec, targets: &TensorSpec) -> (TensorSpec, TensorSpec) {
    (targets.clone(), targets.clone())
}

fn bwd_meta(
    logits: &TensorSpec,
    _targets: &TensorSpec,
    _lse: &TensorSpec,
    _d_out: &TensorSpec,
) -> TensorSpec {
    logits.clone()
}

/// True when a fused kernel serves logits of these sizes on `device`: the CPU backend, or wgpu
/// with the kernels on and every index within the shaders' 32 bits; f32, a vocabulary below 2²⁴
/// (every id exact as a float), at least one row.
fn kernel_applies(device: &Device, dtype: DType, [b, t, v]: [usize; 3]) -> bool {
    let elements = (b * t) as u64 * v as u64;
    let wgsl = super::is_kernel_device(device) && elements < 1 << 32;
    (wgsl || is_cpu_kernel_device(device)) && dtype == DType::F32 && v < 1 << 24 && elements > 0
}

/// Log-probability of each target token: the fused kernel where one serves these logits
/// (WGSL on wgpu, the row loop on the CPU backend), the reference twin elsewhere.
/// logits (B, T, V), targets (B, T) → (B, T)
pub fn token_logprobs(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
    let [b, t, v] = logits.dims();
    if !kernel_applies(&logits.device(), logits.dtype(), [b, t, v]) {
        return token_logprobs_reference(logits, targets);
    }
    let (lp, _lse) = <Dispatch as TokenLogprobExt>::token_logprob_fwd(
        logits.reshape([b * t, v]).into_dispatch(),
        targets.reshape([b * t]).float().into_dispatch(),
    );
    Tensor::<1>::from_dispatch(lp).reshape([b, t])
}
