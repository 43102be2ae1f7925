//! A linear layer, `y = x·W + b`, on the CPU backend: the matrix products straight into fresh
//! buffers, the bias added in the same pass over the output.
//!
//! Composed of burn ops (burn's own `linear`), each product's output is zeroed, filled, then
//! copied once more to re-align it (burn Flex's allocator), the bias is a second pass with its
//! own allocation, and the backward adds a transpose and a broadcast reduction for the bias.
//! Here the forward is one product written into memory that is not zeroed first, then the bias
//! added in place; the backward is two products (`dx = dy·Wᵀ`, `dW = xᵀ·dy`, the transposes as
//! strides) and the bias gradient as per-block column sums added in block order, so no result
//! depends on how many threads ran it.
//!
//! Parts (the same for every kernel): this entry and the extension trait [`LinearExt`]; `cpu.rs`
//! (the CPU implementation; on wgpu burn's own matmul and fusion run the twin); `backward.rs`
//! (the autodiff step); `reference.rs` (the reference twin in burn ops).

mod backward;
mod cpu;
mod reference;

pub use cpu::cpu_launches;
pub use reference::linear_reference;

use super::cpu::is_cpu_kernel_device;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch};
use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::DType;

/// The fused linear layer; implemented for the CPU (Flex) in `cpu.rs`, differentiable (in x, the
/// weight and the bias) through the `Autodiff` implementation in `backward.rs`.
#[backend_extension(Autodiff, Flex)]
pub trait LinearExt: Backend {
    /// x (N, C_in), weight (C_in, C_out), bias (C_out) → y (N, C_out).
    fn linear_fwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// x (N, C_in), weight (C_in, C_out), dy (N, C_out) → (dx (N, C_in), dweight (C_in, C_out),
    /// dbias (C_out)).
    fn linear_bwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// `layer.forward(x)`: the fused kernel on the CPU backend for a layer with a bias, burn's own
/// linear (the reference twin) otherwise.
/// # Shapes
/// x: (..., C_in) → (..., C_out)
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    linear_parts(&layer.weight, layer.bias.as_ref(), x)
}

/// [`linear`] of a layer given as its weight and bias. A frozen weight (a LoRA base) takes
/// burn's linear, whose backward skips the weight's gradient.
/// # Shapes
/// x: (..., C_in); weight: (C_in, C_out); bias: (C_out) → (..., C_out)
pub fn linear_parts<const D: usize>(
    weight: &Param<Tensor<2>>,
    bias: Option<&Param<Tensor<1>>>,
    x: Tensor<D>,
) -> Tensor<D> {
    let Some(bias) = bias else {
        return burn::tensor::module::linear(x, weight.val(), None);
    };
    let device = x.device();
    let frozen = device.is_autodiff() && !weight.val().is_require_grad();
    let fused = is_cpu_kernel_device(&device) && x.dtype() == DType::F32 && !frozen;
    if !fused {
        return linear_reference(x, weight.val(), bias.val());
    }
    let mut dims = x.dims();
    let c_in = dims[D - 1];
    let n = dims.iter().product::<usize>() / c_in.max(1);
    let weight = weight.val();
    dims[D - 1] = weight.dims()[1];
    let y = <Dispatch as LinearExt>::linear_fwd(
        x.reshape([n, c_in]).into_dispatch(),
        weight.into_dispatch(),
        bias.val().into_dispatch(),
    );
    Tensor::<2>::from_dispatch(y).reshape(dims)
}
