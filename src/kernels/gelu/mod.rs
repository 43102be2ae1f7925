//! GPT-2's tanh GELU ("gelu_new") as one fused pass on the CPU backend.
//!
//! Composed of burn ops, the GELU is about eight passes over the MLP's (B, T, 4C) hidden tensor
//! forward and more backward, with a scalar libm `exp` per element in the sigmoid. The kernel
//! computes `x·σ(2z)` (see [`gelu_reference`]) in one pass, saves only `x`, and in the backward
//! recomputes `σ` from it for `dx = dy·(s + x·s·(1 − s)·2z')`, `z' = √(2/π)·(1 + 3·0.044715·x²)`.
//!
//! Parts (the same for every kernel): this entry and the extension trait [`GeluExt`]; `cpu.rs`
//! (the CPU implementation; no WGSL twin: on wgpu burn's fusion already fuses element-wise
//! chains); `backward.rs` (the autodiff step); `reference.rs` (the reference twin in burn ops).

mod backward;
mod cpu;
mod reference;

pub use cpu::cpu_launches;
pub use reference::gelu_reference;

use super::cpu::is_cpu_kernel_device;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch};
use burn::prelude::*;
use burn::tensor::DType;

/// The fused GELU; implemented for the CPU (Flex) in `cpu.rs`, differentiable through the
/// `Autodiff` implementation in `backward.rs`.
#[backend_extension(Autodiff, Flex)]
pub trait GeluExt: Backend {
    /// x (any shape) → gelu_new(x), same shape.
    fn gelu_fwd(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// x and dy (same shape) → dx.
    fn gelu_bwd(x: FloatTensor<Self>, dy: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `gelu_new(x)`: the fused kernel on the CPU backend, the reference twin elsewhere (on wgpu
/// burn's fusion compiles the twin's element-wise chain into one kernel itself).
pub fn gelu_new<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if is_cpu_kernel_device(&x.device()) && x.dtype() == DType::F32 {
        Tensor::from_dispatch(<Dispatch as GeluExt>::gelu_fwd(x.into_dispatch()))
    } else {
        gelu_reference(x)
    }
}
