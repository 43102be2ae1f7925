//! Dropout whose masks come from a per-thread RNG instead of the backend's.
//!
//! Why not burn's `Dropout`: it draws its masks from the backend's one process-wide RNG. The
//! training stages run the micro-batches of a step on parallel threads on the CPU backend
//! (`util::shards`), and threads taking turns at one RNG would get different masks from run to
//! run, so a resumed run would no longer end with the weights of an uninterrupted one. Here
//! every thread draws from its own SplitMix64, which [`seed_masks`] sets from `(seed, step,
//! micro-batch)` before that micro-batch's forward: the masks depend on those numbers only.
//!
//! Dropout acts only on autodiff devices (training); `valid()` models and every inference path
//! see the input unchanged, as with burn's layer.

use crate::util::rng::Rng;
use burn::module::Module;
use burn::prelude::*;
use burn::tensor::TensorData;
use std::cell::Cell;

thread_local! {
    /// The mask RNG of this thread; a fixed start until [`seed_masks`] is called.
    static MASK_RNG: Cell<Rng> = const { Cell::new(Rng { state: 0x5EED_0D80_9A11_0001 }) };
}

/// Seeds this thread's mask RNG for micro-batch `shard` of training step `step`.
pub fn seed_masks(seed: u64, step: usize, shard: usize) {
    let mut r = Rng::new(
        seed ^ (step as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
            ^ (shard as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let s = r.next_u64();
    MASK_RNG.with(|c| c.set(Rng::new(s)));
}

/// `count` keep/drop multipliers: `1/keep` with probability `keep`, else 0. Two draws per
/// 64-bit number (32-bit thresholds: the keep probability is exact to 2⁻³²).
fn mask_values(count: usize, keep: f64) -> Vec<f32> {
    let threshold = (keep * 4_294_967_296.0) as u64;
    let scale = (1.0 / keep) as f32;
    MASK_RNG.with(|c| {
        let mut r = c.get();
        let mut v = Vec::with_capacity(count);
        while v.len() < count {
            let x = r.next_u64();
            for half in [x & 0xFFFF_FFFF, x >> 32] {
                if v.len() < count {
                    v.push(if half < threshold { scale } else { 0.0 });
                }
            }
        }
        c.set(r);
        v
    })
}

/// Zeroes each element with probability `prob` while training and scales the rest by
/// `1/(1 − prob)`.
#[derive(Module, Debug)]
pub struct Dropout {
    /// Probability of zeroing an element, in [0, 1).
    pub prob: f64,
}

impl Dropout {
    pub fn new(prob: f64) -> Self {
        Self { prob }
    }

    /// # Shapes
    /// - x: any; returns the same shape
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let device = x.device();
        if self.prob <= 0.0 || !device.is_autodiff() {
            return x;
        }
        let shape = x.shape();
        let mask = mask_values(shape.num_elements(), 1.0 - self.prob);
        x * Tensor::<D>::from_data(TensorData::new(mask, shape), &device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_depend_on_seed_step_and_shard_only() {
        seed_masks(5, 3, 1);
        let a = mask_values(1000, 0.9);
        let other = std::thread::spawn(|| {
            seed_masks(5, 3, 1);
            mask_values(1000, 0.9)
        })
        .join()
        .unwrap();
        assert_eq!(a, other);
        seed_masks(5, 3, 0);
        assert_ne!(a, mask_values(1000, 0.9));
        let kept = a.iter().filter(|&&x| x > 0.0).count();
        assert!(
            (850..=950).contains(&kept),
            "{kept} of 1000 kept at p = 0.1"
        );
        assert!(a.iter().all(|&x| x == 0.0 || (x - 1.0 / 0.9).abs() < 1e-6));
    }
}
