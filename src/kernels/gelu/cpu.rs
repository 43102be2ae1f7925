//! The fused GELU on the CPU backend (Flex): one pass forward, one backward, in chunks spread
//! over the thread pool (each element's value depends on that element only, so the chunking
//! cannot change a bit).

use super::reference::{CUBIC, TWO_SQRT_2_OVER_PI};
use super::GeluExt;
use crate::kernels::cpu::{dims, exp, tensor, values, vectorised};
use burn::backend::flex::Flex;
use burn::backend::tensor::FloatTensor;
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

static CALLS: AtomicUsize = AtomicUsize::new(0);

/// CPU GELU kernels run so far in this process (forward and backward each count one).
pub fn cpu_gelu_calls() -> usize {
    CALLS.load(Ordering::Relaxed)
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

impl GeluExt for Flex {
    fn gelu_fwd(x: FloatTensor<Self>) -> FloatTensor<Self> {
        CALLS.fetch_add(1, Ordering::Relaxed);
        let shape = dims(&x);
        let mut y = values(&x).into_owned();
        y.par_chunks_mut(CHUNK).for_each(|c| {
            vectorised(|| {
                for v in c.iter_mut() {
                    *v *= sig(*v);
                }
            })
        });
        tensor(y, &shape)
    }

    fn gelu_bwd(x: FloatTensor<Self>, dy: FloatTensor<Self>) -> FloatTensor<Self> {
        CALLS.fetch_add(1, Ordering::Relaxed);
        let shape = dims(&x);
        let x = values(&x);
        let mut dx = values(&dy).into_owned();
        dx.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(d, x)| {
                vectorised(|| {
                    for (d, &x) in d.iter_mut().zip(x) {
                        let s = sig(x);
                        let du = C2 + C2_CUBIC3 * x * x; // d(2z)/dx
                        *d *= s + x * s * (1.0 - s) * du;
                    }
                })
            });
        tensor(dx, &shape)
    }
}
