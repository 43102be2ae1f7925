//! The fused-c_attn attention on wgpu ([`AttentionQkvExt`] for CubeCL): the heads split out of
//! qkv by one dispatch of `shaders/attention_heads.wgsl`, the attention kernels on them, and in
//! the backward dq, dk, dv written back into d qkv by the same shader (mode 1), in place of a
//! copy per head each way and a zeroed d qkv with a slice assignment per head.

use super::{AttentionExt, AttentionQkvExt};
use crate::kernels::wgsl_1d::{empty_like, grid, Wgsl1d};
use crate::kernels::LaunchCounter;
use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::{into_contiguous, CubeBackend, CubeTensor};

/// Invocations (one per element of qkv) in a workgroup.
const WORKGROUP: u32 = 256;

static WGSL_LAUNCHES: LaunchCounter = LaunchCounter::new();

/// How many times the heads kernel has been launched in this process (a split or a merge each).
pub fn wgsl_launches() -> usize {
    WGSL_LAUNCHES.get()
}

fn kernel() -> Wgsl1d {
    Wgsl1d {
        name: "attention_heads",
        text: include_str!("../../../shaders/attention_heads.wgsl"),
        wg: WORKGROUP,
        extra: &[],
    }
}

/// The workgroup size and the final WGSL text of the kernel.
pub fn source() -> (u32, String) {
    (WORKGROUP, kernel().final_text())
}

/// (B, T, C, hs) of qkv (B, T, 3C) cut into `n_head` heads.
fn sizes(qkv: &CubeTensor, n_head: usize) -> [usize; 4] {
    let [b, t, c3] = qkv.meta.shape().dims::<3>();
    let c = c3 / 3;
    [b, t, c, c / n_head.max(1)]
}

/// Runs the heads kernel: `mode` 0 writes the heads from qkv, 1 writes qkv from the heads.
fn launch(qkv: &CubeTensor, heads: [&CubeTensor; 3], [b, t, c, hs]: [usize; 4], mode: u32) {
    let n = b * t * 3 * c;
    let info = [n as u32, t as u32, c as u32, hs as u32, mode];
    kernel().launch_buffers(
        grid(n, WORKGROUP),
        &[qkv, heads[0], heads[1], heads[2]],
        &info,
    );
    WGSL_LAUNCHES.add();
}

/// q, k, v (B, nh, T, hs) each, contiguous, out of qkv (B, T, 3C).
fn split(qkv: &CubeTensor, n_head: usize) -> [CubeTensor; 3] {
    let s = sizes(qkv, n_head);
    let [b, t, _, hs] = s;
    let heads = [0; 3].map(|_| empty_like(qkv, &[b, n_head, t, hs]));
    launch(qkv, [&heads[0], &heads[1], &heads[2]], s, 0);
    heads
}

impl AttentionQkvExt for CubeBackend {
    fn flash_attention_qkv_fwd(
        qkv: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        n_head: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let qkv: CubeTensor = into_contiguous(qkv);
        let [q, k, v] = split(&qkv, n_head);
        <Self as AttentionExt>::flash_attention_fwd(q, k, v, pad, 0)
    }

    fn flash_attention_qkv_bwd(
        qkv: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        d_out: FloatTensor<Self>,
        n_head: usize,
    ) -> FloatTensor<Self> {
        let qkv: CubeTensor = into_contiguous(qkv);
        let s = sizes(&qkv, n_head);
        let [q, k, v] = split(&qkv, n_head);
        let (dq, dk, dv) =
            <Self as AttentionExt>::flash_attention_bwd(q, k, v, pad, out, lse, d_out, 0);
        let [dq, dk, dv]: [CubeTensor; 3] = [dq, dk, dv].map(into_contiguous);
        let d_qkv = empty_like(&qkv, &[s[0], s[1], 3 * s[2]]);
        launch(&d_qkv, [&dq, &dk, &dv], s, 1);
        d_qkv
    }
}
