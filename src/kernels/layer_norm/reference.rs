//! The reference twin of the fused LayerNorm, in burn ops.

use burn::prelude::*;

/// LayerNorm over the last dimension: `(x − mean)/√(var + eps)·weight + bias`, var biased.
/// # Shapes
/// x: (..., C); weight, bias: (C) → (..., C)
pub fn layer_norm_reference<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<1>,
    bias: Tensor<1>,
    eps: f64,
) -> Tensor<D> {
    let (var, mean) = x.clone().var_mean_bias(D - 1);
    let xn = (x - mean).div((var + eps).sqrt());
    xn * weight.unsqueeze() + bias.unsqueeze()
}
