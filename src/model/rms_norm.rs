//! RMSNorm (Llama's `input_layernorm`, `post_attention_layernorm`, `norm`): `x / sqrt(mean(x²) +
//! eps) · weight`, no shift, no mean subtracted — as `transformers`' `LlamaRMSNorm` computes it.

use burn::module::{Module, Param};
use burn::prelude::*;

#[derive(Module, Debug)]
pub struct RmsNorm {
    /// Scale, shape (C,), initialised to 1.
    pub weight: Param<Tensor<1>>,
    pub eps: f64,
}

impl RmsNorm {
    pub fn new(c: usize, eps: f64, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([c], device)),
            eps,
        }
    }

    /// Normalises over the last dimension.
    /// # Shapes
    /// x: (..., C) → (..., C)
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let rms = x
            .clone()
            .powi_scalar(2)
            .mean_dim(D - 1)
            .add_scalar(self.eps)
            .sqrt(); // (..., 1)
        x.div(rms).mul(self.weight.val().unsqueeze::<D>())
    }
}
