//! The reference twin of the fused token log-probability, in burn ops.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Log-probability of each target token. logits (B, T, V), targets (B, T) → (B, T)
pub fn token_logprobs_reference(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
    let [b, t, _] = logits.dims();
    log_softmax(logits, 2)
        .gather(2, targets.reshape([b, t, 1]))
        .reshape([b, t])
}
