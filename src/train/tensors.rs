//! A training batch on the device.

use crate::data::batching::Batch;
use crate::util::tensors::{floats, ints};
use burn::prelude::*;

/// A batch on the device: inputs (B, T), targets (B, T), weights (B, T).
pub fn batch_tensors(b: &Batch, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2>) {
    (
        ints(&b.x, [b.b, b.t], device),
        ints(&b.y, [b.b, b.t], device),
        floats(&b.w, [b.b, b.t], device),
    )
}
