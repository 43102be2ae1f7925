//! The reference twin of the fused GELU, in burn ops.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;

/// √(2/π), doubled: `2z = TWO_SQRT_2_OVER_PI · (x + 0.044715·x³)`.
pub(super) const TWO_SQRT_2_OVER_PI: f64 =
    2.0 * core::f64::consts::FRAC_2_SQRT_PI * core::f64::consts::FRAC_1_SQRT_2;

/// The cubic coefficient of GPT-2's tanh GELU.
pub(super) const CUBIC: f64 = 0.044715;

/// GPT-2's tanh GELU ("gelu_new"), `0.5·x·(1 + tanh(z))` with `z = √(2/π)·(x + 0.044715·x³)`,
/// computed as the identical `x·σ(2z)`. Why not burn's `gelu_approximate`: on the CPU backend its
/// `tanh` and `powf` are scalar libm calls; `x·x·x` and one sigmoid (whose backward reuses its
/// output) do the same work in about half the time.
pub fn gelu_reference<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let cube = x.clone() * x.clone() * x.clone();
    let z2 = (x.clone() + cube * CUBIC) * TWO_SQRT_2_OVER_PI;
    x * sigmoid(z2)
}
