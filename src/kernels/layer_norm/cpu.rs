//! The fused LayerNorm on the CPU backend (Flex): rows in fixed blocks over the thread pool,
//! each row computed by one task in a fixed order; the weight and bias gradients summed per block,
//! then the blocks' sums added in block order (the block size is fixed, not the thread count, so
//! the bits do not depend on the machine's core count).

use super::LayerNormExt;
use crate::kernels::cpu::{column_sums, dims, dot, simd_dispatch, sum, tensor, values};
use crate::kernels::LaunchCounter;
use burn::backend::flex::Flex;
use burn::backend::tensor::FloatTensor;
use rayon::prelude::*;

static CPU_LAUNCHES: LaunchCounter = LaunchCounter::new();

/// CPU LayerNorm kernels run so far in this process (forward and backward each count one).
pub fn cpu_launches() -> usize {
    CPU_LAUNCHES.get()
}

/// Rows per task.
const ROWS: usize = 64;

/// Mean and 1/σ of one row.
#[inline(always)]
fn stats(x: &[f32], eps: f32) -> (f32, f32) {
    let c = x.len() as f32;
    let mean = sum(x) / c;
    let mut acc = [0.0f32; 8];
    let ch = x.chunks_exact(8);
    let tail: f32 = ch
        .remainder()
        .iter()
        .map(|&v| (v - mean) * (v - mean))
        .sum();
    for v in ch {
        for l in 0..8 {
            let d = v[l] - mean;
            acc[l] += d * d;
        }
    }
    let ss = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    (mean, 1.0 / ((ss + tail) / c + eps).sqrt())
}

/// One block of rows: y = (x − mean)/σ·w + b, each row's mean and 1/σ (x, y: rows × C).
#[inline(always)]
fn fwd_block(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    eps: f32,
    y: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
) {
    let c = w.len().max(1);
    for (k, (y, xr)) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)).enumerate() {
        let (m, s) = stats(xr, eps);
        (mean[k], rstd[k]) = (m, s);
        for (((y, &x), &w), &b) in y.iter_mut().zip(xr).zip(w).zip(b) {
            *y = (x - m) * s * w + b;
        }
    }
}

simd_dispatch!(
    fwd_block_simd => fwd_block,
    (x: &[f32], w: &[f32], b: &[f32], eps: f32, y: &mut [f32], mean: &mut [f32], rstd: &mut [f32])
);

/// One block of rows: dx, and the block's Σ dy·x̂ and Σ dy added into `part` (2C).
#[inline(always)]
fn bwd_block(
    x: &[f32],
    dy: &[f32],
    w: &[f32],
    mean: &[f32],
    rstd: &[f32],
    dx: &mut [f32],
    part: &mut [f32],
) {
    let c = w.len();
    let (dw, db) = part.split_at_mut(c);
    let (mut xhat, mut dxhat) = (vec![0.0f32; c], vec![0.0f32; c]);
    let rows = dx
        .chunks_exact_mut(c.max(1))
        .zip(x.chunks_exact(c.max(1)))
        .zip(dy.chunks_exact(c.max(1)));
    for (k, ((dx, xr), dyr)) in rows.enumerate() {
        let (m, s) = (mean[k], rstd[k]);
        for i in 0..c {
            xhat[i] = (xr[i] - m) * s;
            dxhat[i] = dyr[i] * w[i];
            dw[i] += dyr[i] * xhat[i];
            db[i] += dyr[i];
        }
        let mean_d = sum(&dxhat) / c as f32;
        let mean_dx = dot(&dxhat, &xhat) / c as f32;
        for i in 0..c {
            dx[i] = (dxhat[i] - mean_d - xhat[i] * mean_dx) * s;
        }
    }
}

simd_dispatch!(
    bwd_block_simd => bwd_block,
    (x: &[f32], dy: &[f32], w: &[f32], mean: &[f32], rstd: &[f32], dx: &mut [f32], part: &mut [f32])
);

impl LayerNormExt for Flex {
    fn layer_norm_fwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        CPU_LAUNCHES.add();
        let [n, c] = [dims(&x)[0], dims(&x)[1]];
        let (x, w, b) = (values(&x), values(&weight), values(&bias));
        let mut y = vec![0.0f32; n * c];
        let (mut mean, mut rstd) = (vec![0.0f32; n], vec![0.0f32; n]);
        y.par_chunks_mut((ROWS * c).max(1))
            .zip(mean.par_chunks_mut(ROWS))
            .zip(rstd.par_chunks_mut(ROWS))
            .enumerate()
            .for_each(|(blk, ((y, mean), rstd))| {
                let rows = blk * ROWS * c..(blk * ROWS + mean.len()) * c;
                fwd_block_simd(&x[rows], &w, &b, eps as f32, y, mean, rstd)
            });
        (tensor(y, &[n, c]), tensor(mean, &[n]), tensor(rstd, &[n]))
    }

    fn layer_norm_bwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        CPU_LAUNCHES.add();
        let [n, c] = [dims(&x)[0], dims(&x)[1]];
        let (x, w, mean, rstd, dy) = (
            values(&x),
            values(&weight),
            values(&mean),
            values(&rstd),
            values(&dy),
        );
        let mut dx = vec![0.0f32; n * c];
        // per block: Σ dy·x̂ (C) then Σ dy (C)
        let blocks = n.div_ceil(ROWS);
        let mut partial = vec![0.0f32; blocks * 2 * c];
        dx.par_chunks_mut((ROWS * c).max(1))
            .zip(partial.par_chunks_mut((2 * c).max(1)))
            .enumerate()
            .for_each(|(blk, (dx, part))| {
                let first = blk * ROWS;
                let (last, rows) = (first + dx.len() / c.max(1), first * c..first * c + dx.len());
                let (m, s) = (&mean[first..last], &rstd[first..last]);
                bwd_block_simd(&x[rows.clone()], &dy[rows], &w, m, s, dx, part)
            });
        let mut dw = vec![0.0f32; 2 * c]; // Σ dy·x̂ then Σ dy, over the blocks in order
        column_sums(&partial, &mut dw);
        let db = dw.split_off(c);
        (tensor(dx, &[n, c]), tensor(dw, &[c]), tensor(db, &[c]))
    }
}
