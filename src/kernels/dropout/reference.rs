//! The reference twin of the dropout kernel: the same mask drawn on the host, applied with a
//! burn multiply. The CPU backend's dropout, and what `tests/dropout_kernel.rs` compares the
//! kernel against (values and gradients, bitwise).

use super::MaskKey;
use crate::util::rng::Rng;
use crate::util::tensors::floats;
use burn::prelude::*;

/// The key's mask: element j of row r of a micro-batch (r counted from its first row) is
/// element l = r·width + j of its stream, kept when the (l % 2) half (low first) of number
/// `start + l / 2` is below the threshold; elements j ≥ width are dropped.
pub fn mask_values(key: &MaskKey) -> Vec<f32> {
    let (threshold, scale) = (key.threshold() as u64, key.scale());
    let mut v = Vec::with_capacity(key.len());
    let mut row_start = 0;
    for s in &key.segments {
        let width = s.width.min(key.per_row);
        for r in 0..s.row_end - row_start {
            for j in 0..key.per_row {
                if j >= width {
                    v.push(0.0);
                    continue;
                }
                let l = r * width + j;
                let x = Rng::at(s.seed, s.start + (l / 2) as u64);
                let half = if l % 2 == 0 { x & 0xFFFF_FFFF } else { x >> 32 };
                v.push(if half < threshold { scale } else { 0.0 });
            }
        }
        row_start = s.row_end;
    }
    v
}

/// `x · mask(key)` in burn ops.
/// # Shapes
/// - x: (rows, …) with `key.len()` elements; returns the same shape
pub fn dropout_reference<const D: usize>(x: Tensor<D>, key: &MaskKey) -> Tensor<D> {
    let shape = x.dims();
    let mask = floats(&mask_values(key), shape, &x.device());
    x * mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::dropout::Segment;

    #[test]
    fn rng_at_is_the_stream() {
        let mut r = Rng::new(77);
        for n in 0..100 {
            assert_eq!(Rng::at(77, n), r.next_u64(), "number {n}");
        }
    }

    #[test]
    fn segments_read_their_own_streams_from_their_start() {
        let key = MaskKey {
            keep: 0.5,
            per_row: 3,
            segments: vec![
                Segment {
                    row_end: 1,
                    width: 3,
                    seed: 9,
                    start: 0,
                },
                Segment {
                    row_end: 3,
                    width: 3,
                    seed: 11,
                    start: 4,
                },
            ],
        };
        let m = mask_values(&key);
        assert_eq!(m.len(), 9);
        // row 0: numbers 0 and 1 of stream 9 (halves lo, hi, lo)
        let half = |seed, n: u64, hi: bool| {
            let x = Rng::at(seed, n);
            if hi {
                x >> 32
            } else {
                x & 0xFFFF_FFFF
            }
        };
        let t = key.threshold() as u64;
        let expect = |h: u64| if h < t { 2.0 } else { 0.0 };
        assert_eq!(m[0], expect(half(9, 0, false)));
        assert_eq!(m[2], expect(half(9, 1, false)));
        // rows 1..3 start at number 4 of stream 11: element 5 is the high half of number 6
        assert_eq!(m[3], expect(half(11, 4, false)));
        assert_eq!(m[8], expect(half(11, 6, true)));
        let kept = m.iter().filter(|&&x| x > 0.0).count();
        assert!(kept > 0 && kept < 9, "{m:?}");
    }
}
