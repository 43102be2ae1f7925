//! Launching the token log-probability WGSL kernels (`shaders/token_logprob_fwd.wgsl`,
//! `shaders/token_logprob_bwd.wgsl`) on CubeCL/wgpu: forward one workgroup per row, backward one
//! invocation per logit.

use super::TokenLogprobExt;
use crate::kernels::wgsl_1d::{empty_like, grid, rows_cols, Wgsl1d};
use crate::kernels::LaunchCounter;
use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::{into_contiguous, CubeBackend, CubeTensor};

/// Invocations in a forward workgroup (one row); a power of two (the reduction halves it).
const ROW_WORKGROUP: u32 = 64;
/// Invocations (one per logit) in a backward workgroup.
const WORKGROUP: u32 = 256;

static WGSL_LAUNCHES: LaunchCounter = LaunchCounter::new();

/// How many times a token log-probability WGSL kernel has been launched in this process
/// (forward and backward each count one).
pub fn wgsl_launches() -> usize {
    WGSL_LAUNCHES.get()
}

fn fwd_kernel() -> Wgsl1d {
    Wgsl1d {
        name: "token_logprob_fwd",
        text: include_str!("../../../shaders/token_logprob_fwd.wgsl"),
        wg: ROW_WORKGROUP,
        extra: &[],
    }
}

fn bwd_kernel() -> Wgsl1d {
    Wgsl1d {
        name: "token_logprob_bwd",
        text: include_str!("../../../shaders/token_logprob_bwd.wgsl"),
        wg: WORKGROUP,
        extra: &[],
    }
}

/// Each pass's workgroup size and final WGSL text: (name, workgroup size, text).
pub fn sources() -> Vec<(&'static str, u32, String)> {
    vec![
        ("fwd", ROW_WORKGROUP, fwd_kernel().final_text()),
        ("bwd", WORKGROUP, bwd_kernel().final_text()),
    ]
}

impl TokenLogprobExt for CubeBackend {
    fn token_logprob_fwd(
        logits: FloatTensor<Self>,
        targets: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let [l, t]: [CubeTensor; 2] = [logits, targets].map(into_contiguous);
        let (n, v) = rows_cols(&l);
        let (lp, lse) = (empty_like(&l, &[n]), empty_like(&l, &[n]));
        fwd_kernel().launch_buffers(grid(n, 1), &[&l, &t, &lp, &lse], &[n as u32, v as u32]);
        WGSL_LAUNCHES.add();
        (lp, lse)
    }

    fn token_logprob_bwd(
        logits: FloatTensor<Self>,
        targets: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        d_out: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let [l, t, lse, g]: [CubeTensor; 4] = [logits, targets, lse, d_out].map(into_contiguous);
        let (n, v) = rows_cols(&l);
        let dl = empty_like(&l, &[n, v]);
        bwd_kernel().launch_buffers(
            grid(n * v, WORKGROUP),
            &[&l, &t, &lse, &g, &dl],
            &[(n * v) as u32, v as u32],
        );
        WGSL_LAUNCHES.add();
        dl
    }
}
