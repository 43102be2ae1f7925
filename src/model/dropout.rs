//! Dropout whose masks are a pure function of `(seed, step, micro-batch, element)`, made on the
//! device that trains (`kernels::dropout`: a WGSL kernel on wgpu, its host twin on the CPU).
//!
//! Why not burn's `Dropout`: it draws its masks from the backend's one process-wide RNG. The
//! training stages run the micro-batches of a step on parallel threads on the CPU backend
//! (`util::shards`), and threads taking turns at one RNG would get different masks from run to
//! run, so a resumed run would no longer end with the weights of an uninterrupted one; and on a
//! GPU the masks would be drawn on the host and uploaded at every site. Here every micro-batch
//! has its own SplitMix64 stream, seeded from `(seed, step, micro-batch)` by [`seed_masks`] (one
//! micro-batch on this thread) or [`seed_masks_rows`] (all of a step's micro-batches in one
//! forward, as on a GPU); each dropout site reads the next numbers of every stream. A stream is
//! counter-based (number n is computed directly), so the kernel and the host draw the same mask
//! whichever way the micro-batches are laid out.
//!
//! Dropout acts only on autodiff devices (training); `valid()` models and every inference path
//! see the input unchanged, as with burn's layer.

use crate::kernels::dropout::{dropout, MaskKey, Segment};
use crate::util::rng::Rng;
use burn::module::Module;
use burn::prelude::*;
use std::cell::RefCell;

/// One micro-batch's stream: its rows in the forward (`None`: all rows left), the length it
/// was padded to on its own (`None`: the forward's), its seed and the numbers earlier dropout
/// sites have used.
#[derive(Debug, Clone, Copy)]
struct Stream {
    rows: Option<usize>,
    len: Option<usize>,
    seed: u64,
    used: u64,
}

thread_local! {
    /// The streams of the forward on this thread; one fixed stream until a step seeds them.
    static STREAMS: RefCell<Vec<Stream>> = const {
        RefCell::new(Vec::new())
    };
}

/// The stream of a thread that has not been seeded (fixed, so masks are still reproducible).
const UNSEEDED: u64 = 0x5EED_0D80_9A11_0001;

/// The seed of micro-batch `shard`'s stream at training step `step`.
fn stream_seed(seed: u64, step: usize, shard: usize) -> u64 {
    Rng::new(
        seed ^ (step as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
            ^ (shard as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    )
    .next_u64()
}

/// This thread's next forward is micro-batch `shard` of step `step`, alone.
pub fn seed_masks(seed: u64, step: usize, shard: usize) {
    let s = Stream {
        rows: None,
        len: None,
        seed: stream_seed(seed, step, shard),
        used: 0,
    };
    STREAMS.with(|c| *c.borrow_mut() = vec![s]);
}

/// This thread's next forward holds every micro-batch of step `step` at once, `rows[i]` rows of
/// micro-batch `i` in order: each still reads its own stream, so the masks are those the
/// micro-batches would get forwarded one by one ([`seed_masks`]).
pub fn seed_masks_rows(seed: u64, step: usize, rows: &[usize]) {
    seed_streams(seed, step, rows, None);
}

/// As [`seed_masks_rows`] for a forward whose micro-batches were padded to different lengths
/// one by one (`lens[i]`, the longest being the forward's): at a site over every position
/// (B, T, …) a micro-batch's rows read only their first `lens[i]` positions, as they would
/// forwarded alone, and the positions past them are dropped (padding that never reaches a real
/// position in a causal model).
pub fn seed_masks_padded(seed: u64, step: usize, rows: &[usize], lens: &[usize]) {
    seed_streams(seed, step, rows, Some(lens));
}

fn seed_streams(seed: u64, step: usize, rows: &[usize], lens: Option<&[usize]>) {
    let streams = rows
        .iter()
        .enumerate()
        .map(|(i, &r)| Stream {
            rows: Some(r),
            len: lens.and_then(|l| l.get(i).copied()),
            seed: stream_seed(seed, step, i),
            used: 0,
        })
        .collect();
    STREAMS.with(|c| *c.borrow_mut() = streams);
}

/// The key of the next dropout site over `rows` rows of `per_row` elements (`positions` of
/// them along the second dimension), advancing every stream past the numbers it uses. Streams
/// take their rows in order; the last one takes the rest (so a forward with other rows than
/// were seeded still gets a mask, from the same streams). A stream padded to its own length
/// reads `len / positions` of each row when the site spans the forward's longest length.
fn next_key(rows: usize, positions: usize, per_row: usize, keep: f64) -> MaskKey {
    STREAMS.with(|c| {
        let mut streams = c.borrow_mut();
        if streams.is_empty() {
            streams.push(Stream {
                rows: None,
                len: None,
                seed: UNSEEDED,
                used: 0,
            });
        }
        let longest = streams.iter().filter_map(|s| s.len).max();
        let last = streams.len() - 1;
        let mut row_end = 0;
        let mut segments = Vec::with_capacity(streams.len());
        for (i, s) in streams.iter_mut().enumerate() {
            let n = match s.rows {
                Some(r) if i < last => r.min(rows - row_end),
                _ => rows - row_end,
            };
            row_end += n;
            let width = match (s.len, longest) {
                (Some(len), Some(t)) if t == positions && len <= t => len * (per_row / t.max(1)),
                _ => per_row,
            };
            segments.push(Segment {
                row_end,
                width,
                seed: s.seed,
                start: s.used,
            });
            // two 32-bit halves per number; a site never shares a number with the next
            s.used += (n * width).div_ceil(2) as u64;
        }
        MaskKey {
            keep,
            per_row,
            segments,
        }
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
    /// - x: (rows, …) with rows the batch; returns the same shape
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if self.prob <= 0.0 || !x.device().is_autodiff() {
            return x;
        }
        let dims = x.dims();
        let rows = dims[0];
        let positions = dims.get(1).copied().unwrap_or(1);
        let per_row = dims[1..].iter().product::<usize>();
        let key = next_key(rows, positions, per_row, 1.0 - self.prob);
        dropout(x, &key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::dropout::mask_values;

    /// The masks before they were counter-based: one sequential SplitMix64 per thread, two
    /// halves per number, a site starting on a fresh number. Kept to prove nothing moved.
    fn sequential(seed: u64, step: usize, shard: usize, counts: &[usize], keep: f64) -> Vec<f32> {
        let mut r = Rng::new(stream_seed(seed, step, shard));
        let threshold = (keep * 4_294_967_296.0) as u64;
        let scale = (1.0 / keep) as f32;
        let mut v = Vec::new();
        for &count in counts {
            let mut site = Vec::with_capacity(count);
            while site.len() < count {
                let x = r.next_u64();
                for half in [x & 0xFFFF_FFFF, x >> 32] {
                    if site.len() < count {
                        site.push(if half < threshold { scale } else { 0.0 });
                    }
                }
            }
            v.extend(site);
        }
        v
    }

    #[test]
    fn masks_are_those_of_the_sequential_stream() {
        seed_masks(5, 3, 1);
        let a = mask_values(&next_key(3, 7, 7, 0.9)); // 21 elements: an odd count
        let b = mask_values(&next_key(2, 50, 50, 0.9));
        assert_eq!([a, b].concat(), sequential(5, 3, 1, &[21, 100], 0.9));
    }

    #[test]
    fn one_forward_of_all_micro_batches_draws_their_masks() {
        // micro-batch 0 has 2 rows, 1 has 3; per site each reads its own stream
        let per_row = [5, 8];
        let one_by_one: Vec<Vec<f32>> = (0..2)
            .map(|shard| {
                seed_masks(7, 4, shard);
                let rows = [2, 3][shard];
                per_row
                    .iter()
                    .map(|&p| mask_values(&next_key(rows, p, p, 0.8)))
                    .collect::<Vec<_>>()
                    .concat()
            })
            .collect();
        seed_masks_rows(7, 4, &[2, 3]);
        let site0 = mask_values(&next_key(5, 5, 5, 0.8));
        let site1 = mask_values(&next_key(5, 8, 8, 0.8));
        assert_eq!(
            [&site0[..10], &site1[..16]].concat(),
            one_by_one[0],
            "micro-batch 0"
        );
        assert_eq!(
            [&site0[10..], &site1[16..]].concat(),
            one_by_one[1],
            "micro-batch 1"
        );
    }

    #[test]
    fn micro_batches_padded_apart_keep_their_masks_in_one_padded_forward() {
        // micro-batch 0: 2 rows padded to 3 positions; 1: 1 row padded to 5; C = 2
        let alone = |shard: usize, len: usize| {
            seed_masks(7, 4, shard);
            let rows = [2, 1][shard];
            let full = mask_values(&next_key(rows, len, len * 2, 0.5)); // (rows, len, 2)
            let last = mask_values(&next_key(rows, 1, 2, 0.5)); // a (rows, 1, 2) site
            (full, last)
        };
        let (a0, l0) = alone(0, 3);
        let (a1, l1) = alone(1, 5);
        seed_masks_padded(7, 4, &[2, 1], &[3, 5]);
        let full = mask_values(&next_key(3, 5, 10, 0.5)); // (3, 5, 2)
        let last = mask_values(&next_key(3, 1, 2, 0.5));
        for r in 0..2 {
            assert_eq!(full[r * 10..r * 10 + 6], a0[r * 6..r * 6 + 6], "row {r}");
            assert!(full[r * 10 + 6..r * 10 + 10].iter().all(|&v| v == 0.0));
        }
        assert_eq!(full[20..30], a1[..], "micro-batch 1");
        assert_eq!([&l0[..], &l1[..]].concat(), last, "the one-position site");
    }

    #[test]
    fn masks_depend_on_seed_step_and_shard_only() {
        seed_masks(5, 3, 1);
        let a = mask_values(&next_key(10, 100, 100, 0.9));
        let other = std::thread::spawn(|| {
            seed_masks(5, 3, 1);
            mask_values(&next_key(10, 100, 100, 0.9))
        })
        .join()
        .unwrap();
        assert_eq!(a, other);
        seed_masks(5, 3, 0);
        assert_ne!(a, mask_values(&next_key(10, 100, 100, 0.9)));
        let kept = a.iter().filter(|&&x| x > 0.0).count();
        assert!(
            (850..=950).contains(&kept),
            "{kept} of 1000 kept at p = 0.1"
        );
        assert!(a.iter().all(|&x| x == 0.0 || (x - 1.0 / 0.9).abs() < 1e-6));
    }
}
