//! LayerNorm as one fused pass per row on the CPU backend.
//!
//! Composed of burn ops, a LayerNorm is about seven passes over its (B, T, C) input forward
//! (mean, variance, subtract, add, sqrt, divide, scale, shift), each with its own allocation, and
//! about twice that backward. The kernel reads a row, writes the output and keeps two numbers per
//! row (mean, 1/σ); the backward makes dx in one pass per row,
//! `dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))/σ` with `dx̂ = dy·weight`, and the weight and bias
//! gradients as per-block partial sums added in block order, so the result does not depend on how
//! many threads ran it.
//!
//! Parts (the same for every kernel): this entry and the extension trait [`LayerNormExt`];
//! `cpu.rs` (the CPU implementation; on wgpu burn's fusion handles the twin); `backward.rs` (the
//! autodiff step); `reference.rs` (the reference twin in burn ops).

mod backward;
mod cpu;
mod reference;

pub use cpu::cpu_launches;
pub use reference::layer_norm_reference;

use super::cpu::is_cpu_kernel_device;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch};
use burn::prelude::*;
use burn::tensor::DType;

/// The fused LayerNorm; implemented for the CPU (Flex) in `cpu.rs`, differentiable (in x, weight
/// and bias) through the `Autodiff` implementation in `backward.rs`.
#[backend_extension(Autodiff, Flex)]
pub trait LayerNormExt: Backend {
    /// x (N, C), weight (C), bias (C) → (y (N, C), mean (N), 1/σ (N)).
    fn layer_norm_fwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// x (N, C), weight (C), mean (N), 1/σ (N), dy (N, C) → (dx (N, C), dweight (C), dbias (C)).
    fn layer_norm_bwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// LayerNorm over the last dimension: the fused kernel on the CPU backend, the reference twin
/// elsewhere (on wgpu burn's fusion compiles the twin's element-wise chain itself).
/// # Shapes
/// x: (..., C); weight, bias: (C) → (..., C)
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<1>,
    bias: Tensor<1>,
    eps: f64,
) -> Tensor<D> {
    if !(is_cpu_kernel_device(&x.device()) && x.dtype() == DType::F32) {
        return layer_norm_reference(x, weight, bias, eps);
    }
    let dims = x.dims();
    let c = dims[D - 1];
    let n = dims.iter().product::<usize>() / c.max(1);
    let (y, _mean, _rstd) = <Dispatch as LayerNormExt>::layer_norm_fwd(
        x.reshape([n, c]).into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        eps,
    );
    Tensor::<2>::from_dispatch(y).reshape(dims)
}
