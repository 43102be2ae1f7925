//! The fused token log-probability on the CPU backend (Flex): rows in blocks over the thread
//! pool, each row computed by one task in a fixed order.

use super::TokenLogprobExt;
use crate::kernels::cpu::{dims, exp, exp_shifted, max, simd_dispatch, sum, tensor, values};
use crate::kernels::LaunchCounter;
use burn::backend::flex::Flex;
use burn::backend::tensor::FloatTensor;
use rayon::prelude::*;

static CPU_LAUNCHES: LaunchCounter = LaunchCounter::new();

/// CPU token-log-probability kernels run so far in this process (forward and backward each
/// count one).
pub fn cpu_launches() -> usize {
    CPU_LAUNCHES.get()
}

/// Rows per task.
const ROWS: usize = 16;

/// log p(target) and the log-sum-exp L of the rows from `first` on, one per element of `lp`.
#[inline(always)]
fn fwd_rows(l: &[f32], tg: &[f32], v: usize, first: usize, lp: &mut [f32], lse: &mut [f32]) {
    let mut e = vec![0.0f32; v];
    for (k, (lp, lse)) in lp.iter_mut().zip(lse.iter_mut()).enumerate() {
        let r = first + k;
        let row = &l[r * v..(r + 1) * v];
        let m = max(row);
        e.copy_from_slice(row);
        exp_shifted(&mut e, m);
        *lse = m + sum(&e).ln();
        *lp = row[tg[r] as usize] - *lse;
    }
}

simd_dispatch!(
    fwd_rows_simd => fwd_rows,
    (l: &[f32], tg: &[f32], v: usize, first: usize, lp: &mut [f32], lse: &mut [f32])
);

/// d logits = g·(onehot(target) − e^(l − L)) of the rows from `first` on, V floats each of `dl`.
#[inline(always)]
fn bwd_rows(l: &[f32], tg: &[f32], lse: &[f32], g: &[f32], v: usize, first: usize, dl: &mut [f32]) {
    for (k, d) in dl.chunks_mut(v.max(1)).enumerate() {
        let r = first + k;
        let (row, s, gr) = (&l[r * v..(r + 1) * v], lse[r], g[r]);
        for (d, &x) in d.iter_mut().zip(row) {
            *d = -gr * exp(x - s);
        }
        d[tg[r] as usize] += gr;
    }
}

simd_dispatch!(
    bwd_rows_simd => bwd_rows,
    (l: &[f32], tg: &[f32], lse: &[f32], g: &[f32], v: usize, first: usize, dl: &mut [f32])
);

impl TokenLogprobExt for Flex {
    fn token_logprob_fwd(
        logits: FloatTensor<Self>,
        targets: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        CPU_LAUNCHES.add();
        let [n, v] = [dims(&logits)[0], dims(&logits)[1]];
        let (l, tg) = (values(&logits), values(&targets));
        let mut lp = vec![0.0f32; n];
        let mut lse = vec![0.0f32; n];
        lp.par_chunks_mut(ROWS)
            .zip(lse.par_chunks_mut(ROWS))
            .enumerate()
            .for_each(|(c, (lp, lse))| fwd_rows_simd(&l, &tg, v, c * ROWS, lp, lse));
        (tensor(lp, &[n]), tensor(lse, &[n]))
    }

    fn token_logprob_bwd(
        logits: FloatTensor<Self>,
        targets: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        d_out: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        CPU_LAUNCHES.add();
        let [n, v] = [dims(&logits)[0], dims(&logits)[1]];
        let (l, tg, lse, g) = (
            values(&logits),
            values(&targets),
            values(&lse),
            values(&d_out),
        );
        let mut dl = vec![0.0f32; n * v];
        dl.par_chunks_mut(ROWS * v.max(1))
            .enumerate()
            .for_each(|(c, block)| bwd_rows_simd(&l, &tg, &lse, &g, v, c * ROWS, block));
        tensor(dl, &[n, v])
    }
}
