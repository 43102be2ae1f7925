//! The log-probability of each target token, `log_softmax(logits)[target]`, as one fused pass per
//! row on the CPU backend.
//!
//! Composed of burn ops this is a log-softmax over the whole (B, T, V) logits (max, subtract,
//! exp, sum, log, subtract: a pass and a (B, T, V) allocation each, with a scalar libm `exp` per
//! logit), a gather, and in the backward a scatter and the softmax's gradient over (B, T, V)
//! again. The kernel reads each row twice (max, then Σ e^(l − max)) and writes one number; the
//! backward writes `dl = g·(onehot(target) − e^(l − lse))` in one pass, from the saved log-sum-exp.
//!
//! Parts (the same for every kernel): this entry and the extension trait [`TokenLogprobExt`];
//! `cpu.rs` (the CPU implementation; on wgpu burn's fusion handles the twin); `backward.rs` (the
//! autodiff step); `reference.rs` (the reference twin in burn ops).

mod backward;
mod cpu;
mod reference;

pub use cpu::cpu_launches;
pub use reference::token_logprobs_reference;

use super::cpu::is_cpu_kernel_device;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch};
use burn::prelude::*;
use burn::tensor::DType;

/// The fused token log-probability; implemented for the CPU (Flex) in `cpu.rs`, differentiable
/// (in the logits) through the `Autodiff` implementation in `backward.rs`.
#[backend_extension(Autodiff, Flex)]
pub trait TokenLogprobExt: Backend {
    /// logits (N, V), targets (N) token ids as floats → (log-probabilities (N), log-sum-exp (N)).
    fn token_logprob_fwd(
        logits: FloatTensor<Self>,
        targets: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// logits (N, V), targets (N), lse (N), upstream gradient (N) → d logits (N, V).
    fn token_logprob_bwd(
        logits: FloatTensor<Self>,
        targets: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        d_out: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// Log-probability of each target token: the fused kernel on the CPU backend (vocabularies
/// below 2²⁴, so every id is exact as a float), the reference twin elsewhere.
/// logits (B, T, V), targets (B, T) → (B, T)
pub fn token_logprobs(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
    let [b, t, v] = logits.dims();
    if !(is_cpu_kernel_device(&logits.device()) && logits.dtype() == DType::F32 && v < 1 << 24) {
        return token_logprobs_reference(logits, targets);
    }
    let (lp, _lse) = <Dispatch as TokenLogprobExt>::token_logprob_fwd(
        logits.reshape([b * t, v]).into_dispatch(),
        targets.reshape([b * t]).float().into_dispatch(),
    );
    Tensor::<1>::from_dispatch(lp).reshape([b, t])
}
