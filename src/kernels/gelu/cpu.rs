//! The fused GELU on the CPU backend (Flex): one pass forward, one backward, in chunks spread
//! over the thread pool (each element's value depends on that element only, so the chunking
//! cannot change a bit).

use super::reference::{CUBIC, TWO_SQRT_2_OVER_PI};
use super::GeluExt;
use crate::kernels::cpu::{dims, exp, simd_dispatch, tensor, values};
use crate::kernels::LaunchCounter;
use burn::backend::flex::Flex;
use burn::backend::tensor::FloatTensor;
use rayon::prelude::*;

static CPU_LAUNCHES: LaunchCounter = LaunchCounter::new();

/// CPU GELU kernels run so far in this process (forward and backward each count one).
pub fn cpu_launches() -> usize {
    CPU_LAUNCHES.get()
}

/// Elements per task: large enough that a task outweighs its scheduling.
const CHUNK: usize = 16 * 1024;

const C2: f32 = TWO_SQRT_2_OVER_PI as f32;
const C2_CUBIC: f32 = (TWO_SQRT_2_OVER_PI * CUBIC) as f32;
const C2_CUBIC3: f32 = (TWO_SQRT_2_OVER_PI * CUBIC * 3.0) as f32;

/// σ(2z) for x.
#[inline(always)]
fn sig(x: f32) -> f32 {
    let u = x * (C2 + C2_CUBIC * x * x); // 2z
    1.0 / (1.0 + exp(-u))
}

/// y ← gelu_new(y), element by element.
#[inline(always)]
fn fwd_chunk(y: &mut [f32]) {
    for v in y.iter_mut() {
        *v *= sig(*v);
    }
}

simd_dispatch!(fwd_chunk_simd => fwd_chunk, (y: &mut [f32]));

/// d ← dy·gelu_new′(x), element by element (d holds dy on entry).
#[inline(always)]
fn bwd_chunk(d: &mut [f32], x: &[f32]) {
    for (d, &x) in d.iter_mut().zip(x) {
        let s = sig(x);
        let du = C2 + C2_CUBIC3 * x * x; // d(2z)/dx
        *d *= s + x * s * (1.0 - s) * du;
    }
}

simd_dispatch!(bwd_chunk_simd => bwd_chunk, (d: &mut [f32], x: &[f32]));

impl GeluExt for Flex {
    fn gelu_fwd(x: FloatTensor<Self>) -> FloatTensor<Self> {
        CPU_LAUNCHES.add();
        let shape = dims(&x);
        let mut y = values(&x).into_owned();
        y.par_chunks_mut(CHUNK).for_each(fwd_chunk_simd);
        tensor(y, &shape)
    }

    fn gelu_bwd(x: FloatTensor<Self>, dy: FloatTensor<Self>) -> FloatTensor<Self> {
        CPU_LAUNCHES.add();
        let shape = dims(&x);
        let x = values(&x);
        let mut dx = values(&dy).into_owned();
        dx.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(d, x)| bwd_chunk_simd(d, x));
        tensor(dx, &shape)
    }
}
