//! Moving host data to and from the device.

use crate::data::batching::Batch;
use anyhow::{anyhow, Result};
use burn::prelude::*;

pub fn ints<const D: usize>(v: &[i64], shape: [usize; D], device: &Device) -> Tensor<D, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

pub fn floats<const D: usize>(v: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

/// A batch on the device: inputs (B, T), targets (B, T), weights (B, T).
pub fn batch_tensors(b: &Batch, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2>) {
    (
        ints(&b.x, [b.b, b.t], device),
        ints(&b.y, [b.b, b.t], device),
        floats(&b.w, [b.b, b.t], device),
    )
}

/// All values of a float tensor, on the host.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow!("reading a tensor from the device: {e:?}"))
}

/// A one-element tensor as f64.
pub fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f32>() as f64
}
