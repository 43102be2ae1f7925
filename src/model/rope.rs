//! Rotary position embeddings as Llama applies them (`transformers`' `rotate_half` layout: the
//! first and second halves of a head are the two coordinates of each rotated pair, not
//! interleaved neighbours). Angles are `position · inv_freq`, computed in f32 on the device from
//! the positions each row's tokens sit at, so left-padded batches and KV-cached steps rotate
//! every token by its own absolute position.

use burn::prelude::*;

/// The cosines and sines of every token's angles, each repeated over both halves of a head.
#[derive(Clone, Debug)]
pub struct Rotary {
    /// (B, 1, T, hs)
    pub cos: Tensor<4>,
    /// (B, 1, T, hs)
    pub sin: Tensor<4>,
}

impl Rotary {
    /// # Shapes
    /// - pos: (B, T) absolute positions
    /// - inv_freq: hs/2 frequencies (`LlamaConfig::inv_freq`)
    pub fn new(pos: Tensor<2, Int>, inv_freq: &[f32]) -> Self {
        let [b, t] = pos.dims();
        let half = inv_freq.len();
        let device = pos.device();
        let freq = Tensor::<1>::from_floats(inv_freq, &device).reshape([1, 1, half]);
        let angles = pos.float().reshape([b, t, 1]).mul(freq); // (B, T, hs/2)
        let both = Tensor::cat(vec![angles.clone(), angles], 2); // (B, T, hs)
        Self {
            cos: both.clone().cos().reshape([b, 1, t, 2 * half]),
            sin: both.sin().reshape([b, 1, t, 2 * half]),
        }
    }

    /// Rotates the heads of `x`: `x · cos + rotate_half(x) · sin`.
    /// # Shapes
    /// x: (B, n, T, hs) → (B, n, T, hs)
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let hs = x.dims()[3];
        let half = hs / 2;
        let x1 = x.clone().narrow(3, 0, half);
        let x2 = x.clone().narrow(3, half, half);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3); // (B, n, T, hs)
        x * self.cos.clone() + rotated * self.sin.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::tensors::to_vec;

    /// One head of size 4 (inv_freq [1, 0.01]) at position 2: the pair (x0, x2) turns by 2
    /// radians, the pair (x1, x3) by 0.02. x = [1, 0, 0, 1]: x0' = cos 2 = −0.416147,
    /// x2' = sin 2 = 0.909297, x1' = −sin 0.02 = −0.019999, x3' = cos 0.02 = 0.999800.
    #[test]
    fn rotates_each_half_pair_by_position_times_frequency() {
        let dev = Device::flex();
        let pos = Tensor::<2, Int>::from_ints([[2]], &dev);
        let r = Rotary::new(pos, &[1.0, 0.01]);
        let x = Tensor::<4>::from_floats([[[[1.0, 0.0, 0.0, 1.0]]]], &dev);
        let y = to_vec(r.apply(x)).unwrap();
        let want = [-0.416_147, -0.019_999, 0.909_297, 0.999_800];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{y:?}");
        }
    }
}
