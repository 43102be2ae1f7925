//! The fused linear layer on the CPU backend (Flex): the products through [`matmul_new`] (spread
//! over the thread pool by the matmul library, with the same bits on any thread count), the bias
//! and its gradient in fixed blocks of rows.

use super::LinearExt;
use crate::kernels::cpu::{column_sums, dims, matmul_new, simd_dispatch, tensor, values, Mat};
use crate::kernels::LaunchCounter;
use burn::backend::flex::Flex;
use burn::backend::tensor::FloatTensor;
use rayon::prelude::*;

static CPU_LAUNCHES: LaunchCounter = LaunchCounter::new();

/// CPU linear-layer kernels run so far in this process (forward and backward each count one).
pub fn cpu_launches() -> usize {
    CPU_LAUNCHES.get()
}

/// Rows per task.
const ROWS: usize = 64;

/// y ← y + b for each row of `y` (rows of b.len()).
#[inline(always)]
fn add_bias(y: &mut [f32], b: &[f32]) {
    for row in y.chunks_exact_mut(b.len().max(1)) {
        for (y, &b) in row.iter_mut().zip(b) {
            *y += b;
        }
    }
}

simd_dispatch!(add_bias_simd => add_bias, (y: &mut [f32], b: &[f32]));

impl LinearExt for Flex {
    fn linear_fwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        CPU_LAUNCHES.add();
        let [n, c_in] = [dims(&x)[0], dims(&x)[1]];
        let c_out = dims(&weight)[1];
        let (x, w, b) = (values(&x), values(&weight), values(&bias));
        let mut y = matmul_new(
            Mat::rows(&x, n, c_in, c_in),
            Mat::rows(&w, c_in, c_out, c_out),
        ); // (N, C_out)
        y.par_chunks_mut((ROWS * c_out).max(1))
            .for_each(|rows| add_bias_simd(rows, &b));
        tensor(y, &[n, c_out])
    }

    fn linear_bwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        CPU_LAUNCHES.add();
        let [n, c_in] = [dims(&x)[0], dims(&x)[1]];
        let c_out = dims(&weight)[1];
        let (x, w, dy) = (values(&x), values(&weight), values(&dy));
        let (xm, wm) = (
            Mat::rows(&x, n, c_in, c_in),
            Mat::rows(&w, c_in, c_out, c_out),
        );
        let dym = Mat::rows(&dy, n, c_out, c_out);
        let dx = matmul_new(dym, wm.t()); // (N, C_in)
        let dw = matmul_new(xm.t(), dym); // (C_in, C_out)

        // the bias gradient: per block of rows, then the blocks in order
        let blocks = n.div_ceil(ROWS);
        let mut partial = vec![0.0f32; blocks * c_out];
        partial
            .par_chunks_mut(c_out.max(1))
            .enumerate()
            .for_each(|(blk, part)| {
                let rows = blk * ROWS * c_out..((blk + 1) * ROWS).min(n) * c_out;
                column_sums(&dy[rows], part)
            });
        let mut db = vec![0.0f32; c_out];
        column_sums(&partial, &mut db);
        (
            tensor(dx, &[n, c_in]),
            tensor(dw, &[c_in, c_out]),
            tensor(db, &[c_out]),
        )
    }
}
