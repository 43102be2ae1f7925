//! Dropout applied on the device: `x · mask`, the mask drawn inside the kernel from a
//! counter-based RNG (`shaders/dropout.wgsl`), so a training step makes no mask on the host,
//! uploads none and stores none for the backward, which is the same kernel applied to dO.
//!
//! The mask is a pure function of a [`MaskKey`]: the micro-batches' SplitMix64 streams (one per
//! micro-batch, seeded from `(seed, step, micro-batch)` by `model::dropout`) and where in each
//! stream this dropout site starts. The reference twin draws the same numbers on the host
//! ([`mask_values`]), so both devices drop the same elements, bit for bit, and a run resumes
//! exactly on either (`tests/dropout_kernel.rs` compares them).
//!
//! Parts (the same for every kernel): this entry and the extension trait [`DropoutExt`];
//! `launch.rs` (the WGSL kernel on CubeCL/wgpu; one workgroup size, so no plan); `cpu.rs` (the
//! same pass on the CPU backend); `backward.rs` (the autodiff step: the kernel again, on the
//! upstream gradient); `reference.rs` (the twin).

mod backward;
mod cpu;
mod launch;
mod reference;

pub use cpu::cpu_launches;
pub use launch::{source, wgsl_launches};
pub use reference::{dropout_reference, mask_values};

use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Shape};
use burn::prelude::*;
use burn::tensor::DType;

/// Where one micro-batch's rows read their numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// One past the micro-batch's last row (rows are the first dimension).
    pub row_end: usize,
    /// Elements of each of its rows that read the stream (at most `MaskKey::per_row`): a
    /// micro-batch padded to fewer positions than the tensor holds counts only its own; the
    /// elements past them are padding it never had, and are dropped.
    pub width: usize,
    /// The micro-batch's SplitMix64 seed (its state before the first number).
    pub seed: u64,
    /// Index of the number the micro-batch's first element reads (what earlier sites used).
    pub start: u64,
}

/// Everything the mask of one dropout site depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskKey {
    /// Probability of keeping an element, in (0, 1).
    pub keep: f64,
    /// Elements per row (the tensor's size over its first dimension).
    pub per_row: usize,
    /// The micro-batches in row order; the last one's `row_end` is the number of rows.
    pub segments: Vec<Segment>,
}

impl MaskKey {
    /// A 32-bit half below this keeps its element: the keep probability exact to 2⁻³².
    pub fn threshold(&self) -> u32 {
        ((self.keep * 4_294_967_296.0) as u64).min(u32::MAX as u64) as u32
    }

    /// What a kept element is multiplied by.
    pub fn scale(&self) -> f32 {
        (1.0 / self.keep) as f32
    }

    /// Elements of the tensor the key is for.
    pub fn len(&self) -> usize {
        self.segments.last().map_or(0, |s| s.row_end) * self.per_row
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `info` words the shader reads (see `shaders/dropout.wgsl`); `None` when a count does
    /// not fit its 32 bits (the reference twin then runs).
    pub fn words(&self) -> Option<Vec<u32>> {
        let small = |v: usize| u32::try_from(v).ok();
        let mut w = vec![
            small(self.len())?,
            small(self.per_row)?,
            self.threshold(),
            self.scale().to_bits(),
            small(self.segments.len())?,
        ];
        for s in &self.segments {
            w.extend([
                small(s.row_end)?,
                small(s.width.min(self.per_row))?,
                s.seed as u32,
                (s.seed >> 32) as u32,
                s.start as u32,
                (s.start >> 32) as u32,
            ]);
        }
        Some(w)
    }
}

/// A key as its `info` words carry it (what the shader and the CPU kernel read): the threshold
/// and the scale instead of the keep probability, each segment's width at most `per_row`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyWords {
    pub per_row: usize,
    pub threshold: u32,
    pub scale: f32,
    pub segments: Vec<Segment>,
}

impl KeyWords {
    /// Reads the words [`MaskKey::words`] writes (a missing word reads as 0).
    pub fn decode(words: &[u32]) -> Self {
        let word = |i: usize| words.get(i).copied().unwrap_or(0);
        let long = |i: usize| word(i) as u64 | (word(i + 1) as u64) << 32;
        let segments = (0..word(4) as usize)
            .map(|s| {
                let b = 5 + 6 * s;
                Segment {
                    row_end: word(b) as usize,
                    width: word(b + 1) as usize,
                    seed: long(b + 2),
                    start: long(b + 4),
                }
            })
            .collect();
        Self {
            per_row: word(1) as usize,
            threshold: word(2),
            scale: f32::from_bits(word(3)),
            segments,
        }
    }
}

/// `x · mask(key)`: the WGSL kernel on wgpu devices, the fused pass in `cpu.rs` on the CPU
/// backend, [`dropout_reference`] where the kernels are off. Gradients flow into `x` either way
/// (dx = dy · mask).
/// # Shapes
/// - x: (rows, …) with `key.len()` elements; returns the same shape
pub fn dropout<const D: usize>(x: Tensor<D>, key: &MaskKey) -> Tensor<D> {
    let device = x.device();
    let applies = (super::is_kernel_device(&device) || super::cpu::is_cpu_kernel_device(&device))
        && x.dtype() == DType::F32
        && x.shape().num_elements() == key.len()
        && !key.is_empty();
    // the words only where a kernel runs: the twin builds nothing per site
    match applies.then(|| key.words()).flatten() {
        Some(words) => Tensor::from_dispatch(Dispatch::dropout_apply(x.into_dispatch(), words)),
        None => dropout_reference(x, key),
    }
}

fn same_shape(x: &Shape, _words: &[u32]) -> Shape {
    x.clone()
}

#[backend_extension(Autodiff, Cube, Fusion, Flex)]
pub trait DropoutExt: Backend {
    /// x (N,…) and the key's `info` words → x · mask, same shape. Differentiable through the
    /// `Autodiff` implementation in `backward.rs`.
    #[fusion(dtype = x, shape = same_shape(x, words))]
    fn dropout_apply(x: FloatTensor<Self>, words: Vec<u32>) -> FloatTensor<Self>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_decode_to_the_key() {
        let seg = |row_end, width, seed, start| Segment {
            row_end,
            width,
            seed,
            start,
        };
        let key = MaskKey {
            keep: 0.7,
            per_row: 129,
            segments: vec![
                seg(2, 129, u64::MAX - 3, 0xFFFF_FFFF),
                seg(3, 100, 1, 1 << 40),
                seg(7, 200, 0xDEAD_BEEF_0BAD_F00D, 12),
            ],
        };
        let want = KeyWords {
            per_row: 129,
            threshold: key.threshold(),
            scale: key.scale(),
            // a width past the row is read as the row
            segments: vec![
                key.segments[0],
                key.segments[1],
                seg(7, 129, 0xDEAD_BEEF_0BAD_F00D, 12),
            ],
        };
        assert_eq!(KeyWords::decode(&key.words().unwrap()), want);
    }
}
