//! Dropout on the CPU backend (Flex): `x · mask` in one pass, each element's mask bit drawn
//! where it is used (the counter-based stream makes element l's number a function of l alone),
//! in fixed blocks of rows over the thread pool. The backward is the same pass on dy. Nothing is
//! stored between them but the key's words; the reference twin instead builds the whole mask on
//! one thread ([`super::mask_values`]), uploads it as a tensor and multiplies.

use super::{DropoutExt, KeyWords, Segment};
use crate::kernels::cpu::{dims, simd_dispatch, tensor, values};
use crate::kernels::LaunchCounter;
use crate::util::rng::Rng;
use burn::backend::flex::Flex;
use burn::backend::tensor::FloatTensor;
use rayon::prelude::*;

static CPU_LAUNCHES: LaunchCounter = LaunchCounter::new();

/// CPU dropout kernels run so far in this process (forward and backward each count one).
pub fn cpu_launches() -> usize {
    CPU_LAUNCHES.get()
}

/// Elements per task (whole rows are not needed: each element finds its own row).
const CHUNK: usize = 16 * 1024;

/// y[j] = x[j]·m for the elements j of one row from column `col` on, m = `scale` where the
/// element's half of its number is below `threshold`, else 0 (a multiply either way, so the
/// bits are the twin's, −0 included). `l0` is the stream index of column `col`'s element.
#[inline(always)]
fn row_part(x: &[f32], y: &mut [f32], seg: Segment, l0: u64, threshold: u32, scale: f32) {
    for (j, (y, &x)) in y.iter_mut().zip(x).enumerate() {
        let l = l0 + j as u64;
        let n = Rng::at(seg.seed, seg.start.wrapping_add(l >> 1));
        let half = if l & 1 == 0 {
            n as u32
        } else {
            (n >> 32) as u32
        };
        *y = x * if half < threshold { scale } else { 0.0 };
    }
}

simd_dispatch!(
    row_part_simd => row_part,
    (x: &[f32], y: &mut [f32], seg: Segment, l0: u64, threshold: u32, scale: f32)
);

/// The elements from `first` on of the tensor the key is for, into `y`.
fn chunk(x: &[f32], y: &mut [f32], first: usize, key: &KeyWords) {
    let (threshold, scale, segs) = (key.threshold, key.scale, &key.segments);
    let per_row = key.per_row.max(1);
    let mut e = first;
    let mut done = 0;
    while done < y.len() {
        let (row, col) = (e / per_row, e % per_row);
        let take = (per_row - col).min(y.len() - done);
        let s = segs
            .iter()
            .position(|s| row < s.row_end)
            .unwrap_or(segs.len());
        let (xs, ys) = (&x[e..e + take], &mut y[done..done + take]);
        match segs.get(s) {
            Some(seg) => {
                let row_start = if s == 0 { 0 } else { segs[s - 1].row_end };
                let width = seg.width.min(per_row);
                // columns past the micro-batch's own width are padding: dropped
                let kept = width.saturating_sub(col).min(take);
                let l0 = ((row - row_start) * width + col) as u64;
                row_part_simd(&xs[..kept], &mut ys[..kept], *seg, l0, threshold, scale);
                for (y, &x) in ys[kept..].iter_mut().zip(&xs[kept..]) {
                    *y = x * 0.0;
                }
            }
            None => ys.iter_mut().zip(xs).for_each(|(y, &x)| *y = x * 0.0),
        }
        e += take;
        done += take;
    }
}

impl DropoutExt for Flex {
    fn dropout_apply(x: FloatTensor<Self>, words: Vec<u32>) -> FloatTensor<Self> {
        CPU_LAUNCHES.add();
        let shape = dims(&x);
        let x = values(&x);
        let key = KeyWords::decode(&words);
        let mut y = vec![0.0f32; x.len()];
        y.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, y)| chunk(&x, y, c * CHUNK, &key));
        tensor(y, &shape)
    }
}
