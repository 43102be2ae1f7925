//! LayerNorm as one fused pass per row: a WGSL kernel on wgpu, a row loop on the CPU backend.
//!
//! Composed of burn ops, a LayerNorm is about seven passes over its (B, T, C) input forward
//! (mean, variance, subtract, add, sqrt, divide, scale, shift), each with its own allocation, and
//! about twice that backward. The kernel reads a row, writes the output and keeps two numbers per
//! row (mean, 1/σ); the backward makes dx in one pass per row,
//! `dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))/σ` with `dx̂ = dy·weight`, and the weight and bias
//! gradients as per-block partial sums added in block order, so the result does not depend on how
//! many threads ran it.
//!
//! Composed of burn ops on wgpu it costs about 30 dispatches forward and backward (reductions
//! and the element-wise steps between them, which burn's fusion cannot join); the WGSL kernels
//! take two, one each way.
//!
//! Parts (the same for every kernel): this entry and the extension trait [`LayerNormExt`];
//! `launch.rs` (the WGSL kernels on CubeCL/wgpu); `cpu.rs` (the CPU implementation);
//! `backward.rs` (the autodiff step); `reference.rs` (the reference twin in burn ops).

mod backward;
mod cpu;
mod launch;
mod reference;

pub use cpu::cpu_launches;
pub use launch::{sources, wgsl_launches};
pub use reference::layer_norm_reference;

use super::cpu::is_cpu_kernel_device;
use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch};
use burn::prelude::*;
use burn::tensor::DType;

/// The fused LayerNorm; implemented for wgpu in `launch.rs` and for the CPU (Flex) in `cpu.rs`,
/// differentiable (in x, weight and bias) through the `Autodiff` implementation in `backward.rs`.
#[backend_extension(Autodiff, Cube, Fusion, Flex)]
pub trait LayerNormExt: Backend {
    /// x (N, C), weight (C), bias (C) → (y (N, C), mean (N), 1/σ (N)).
    #[fusion(meta = fwd_meta)]
    fn layer_norm_fwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// x (N, C), weight (C), mean (N), 1/σ (N), dy (N, C) → (dx (N, C), dweight (C), dbias (C)).
    #[fusion(meta = bwd_meta)]
    fn layer_norm_bwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

fn fwd_meta(
    x: &TensorSpec,
    w: &TensorSpec,
    _b: &TensorSpec,
    _eps: &f64,
) -> (TensorSpec, TensorSpec, TensorSpec) {
    let n = x.shape.dims::<2>()[0];
    let stat = TensorSpec::new([n].into_iter().collect(), w.dtype);
    (x.clone(), stat.clone(), stat)
}

fn bwd_meta(
    x: &TensorSpec,
    w: &TensorSpec,
    _mean: &TensorSpec,
    _rstd: &TensorSpec,
    _dy: &TensorSpec,
) -> (TensorSpec, TensorSpec, TensorSpec) {
    (x.clone(), w.clone(), w.clone())
}

/// LayerNorm over the last dimension: the fused kernel (WGSL on wgpu, the row loop on the CPU
/// backend), the reference twin where the kernels are off or the input is not f32.
/// # Shapes
/// x: (..., C); weight, bias: (C) → (..., C)
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<1>,
    bias: Tensor<1>,
    eps: f64,
) -> Tensor<D> {
    let device = x.device();
    let kernel_device = super::is_kernel_device(&device) || is_cpu_kernel_device(&device);
    if !(kernel_device && x.dtype() == DType::F32 && x.shape().num_elements() > 0) {
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
