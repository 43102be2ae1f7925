//! The reference twin of the fused linear layer, in burn ops.

use burn::prelude::*;

/// `x·weight + bias`, as burn's `Linear::forward` computes it.
/// # Shapes
/// x: (..., C_in); weight: (C_in, C_out); bias: (C_out) → (..., C_out)
pub fn linear_reference<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Tensor<1>,
) -> Tensor<D> {
    burn::tensor::module::linear(x, weight, Some(bias))
}
