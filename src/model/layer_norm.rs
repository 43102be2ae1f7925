//! LayerNorm with GPT-2's parameter names (`weight`, `bias`; burn's own calls them
//! `gamma`/`beta`), so `h.{i}.ln_1.weight` lands in the safetensors file as Hugging Face names it.

use crate::kernels::layer_norm::layer_norm;
use burn::module::{Module, Param};
use burn::prelude::*;

#[derive(Module, Debug)]
pub struct LayerNorm {
    /// Scale, shape (C,), initialised to 1.
    pub weight: Param<Tensor<1>>,
    /// Shift, shape (C,), initialised to 0.
    pub bias: Param<Tensor<1>>,
    pub eps: f64,
}

impl LayerNorm {
    pub fn new(c: usize, eps: f64, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([c], device)),
            bias: Param::from_tensor(Tensor::zeros([c], device)),
            eps,
        }
    }

    /// Normalises over the last dimension: the fused kernel on the CPU backend, its composed
    /// twin elsewhere (see [`crate::kernels::layer_norm`]).
    /// # Shapes
    /// x: (..., C) → (..., C)
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        layer_norm(x, self.weight.val(), self.bias.val(), self.eps)
    }
}
