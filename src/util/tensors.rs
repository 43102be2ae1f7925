//! Moving host data to and from the device: id and float tensors from slices, values back.

use anyhow::{anyhow, Result};
use burn::prelude::*;

pub fn ints<const D: usize>(v: &[i64], shape: [usize; D], device: &Device) -> Tensor<D, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

pub fn floats<const D: usize>(v: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
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
