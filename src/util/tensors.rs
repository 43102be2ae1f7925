//! Moving host data to and from the device: id, float and mask tensors from slices, values
//! back. Every transfer the program makes in a training or generation loop goes through here, so
//! [`Transfers`] counts them all (`rlhf bench` prints them per step and per token).

use anyhow::{anyhow, Result};
use burn::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

static SYNCS: AtomicU64 = AtomicU64::new(0);
static BYTES_DOWN: AtomicU64 = AtomicU64::new(0);
static BYTES_UP: AtomicU64 = AtomicU64::new(0);

/// Host ↔ device transfers of this process so far (all threads): reads that wait for the device
/// (syncs) with their bytes, and bytes handed to the device (tensor data and kernel parameters,
/// at the size the host passes them: an id is an i64, 8 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transfers {
    pub syncs: u64,
    pub bytes_down: u64,
    pub bytes_up: u64,
}

impl Transfers {
    pub fn now() -> Self {
        Self {
            syncs: SYNCS.load(Ordering::Relaxed),
            bytes_down: BYTES_DOWN.load(Ordering::Relaxed),
            bytes_up: BYTES_UP.load(Ordering::Relaxed),
        }
    }

    /// The transfers after `start` was read.
    pub fn since(start: Self) -> Self {
        let n = Self::now();
        Self {
            syncs: n.syncs - start.syncs,
            bytes_down: n.bytes_down - start.bytes_down,
            bytes_up: n.bytes_up - start.bytes_up,
        }
    }
}

/// Counts `bytes` handed to the device outside the helpers below (a kernel's parameters).
pub fn count_upload(bytes: usize) {
    BYTES_UP.fetch_add(bytes as u64, Ordering::Relaxed);
}

fn count_read(bytes: usize) {
    SYNCS.fetch_add(1, Ordering::Relaxed);
    BYTES_DOWN.fetch_add(bytes as u64, Ordering::Relaxed);
}

pub fn ints<const D: usize>(v: &[i64], shape: [usize; D], device: &Device) -> Tensor<D, Int> {
    count_upload(std::mem::size_of_val(v));
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

pub fn floats<const D: usize>(v: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    count_upload(std::mem::size_of_val(v));
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

pub fn bools<const D: usize>(v: &[bool], shape: [usize; D], device: &Device) -> Tensor<D, Bool> {
    count_upload(std::mem::size_of_val(v));
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

/// All values of a float tensor, on the host (one sync).
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let v = t
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow!("reading a tensor from the device: {e:?}"))?;
    count_read(std::mem::size_of_val(&v[..]));
    Ok(v)
}

/// A one-element tensor as f64 (one sync).
pub fn scalar(t: Tensor<1>) -> f64 {
    count_read(4);
    t.into_scalar::<f32>() as f64
}

/// Several one-element (or longer) tensors read back in ONE transfer, in order: a step that
/// needs its loss and gradient norm on the host waits for the device once, not once per value.
pub fn read_scalars(ts: Vec<Tensor<1>>) -> Result<Vec<f32>> {
    if ts.is_empty() {
        return Ok(Vec::new());
    }
    to_vec(Tensor::cat(ts, 0))
}
