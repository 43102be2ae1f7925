//! Launching the ranking-loss WGSL kernel (`shaders/ranking_loss.wgsl`) on CubeCL/wgpu: the
//! workgroup size, the `info` binding, buffers and workgroup count, and the launch counter the
//! tests read. One pass writes the loss and dL/dr packed into one output.

use super::RankLossExt;
use crate::kernels::wgsl_1d::{empty_like, Wgsl1d};
use crate::kernels::LaunchCounter;
use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::{into_contiguous, CubeBackend, CubeTensor};

/// Invocations (one per prompt) in a workgroup.
const WORKGROUP: u32 = 64;

static WGSL_LAUNCHES: LaunchCounter = LaunchCounter::new();

/// How many times the WGSL ranking-loss kernel has been launched in this process (tests use it
/// to prove the kernel path, not the reference twin, ran).
pub fn wgsl_launches() -> usize {
    WGSL_LAUNCHES.get()
}

/// The kernel at its workgroup size.
fn kernel() -> Wgsl1d {
    Wgsl1d {
        name: "ranking_loss",
        text: include_str!("../../../shaders/ranking_loss.wgsl"),
        wg: WORKGROUP,
        extra: &[],
    }
}

/// The workgroup size and the final WGSL text of the kernel.
pub fn source() -> (u32, String) {
    (WORKGROUP, kernel().final_text())
}

/// `[P, N, off_0, …, off_P]` as the shader's `info` binding reads it.
fn kernel_info(n: usize, ks: &[u32]) -> Vec<u32> {
    let mut info = Vec::with_capacity(ks.len() + 3);
    info.push(ks.len() as u32);
    info.push(n as u32);
    let mut off = 0u32;
    info.push(off);
    for &k in ks {
        off += k;
        info.push(off);
    }
    info
}

impl RankLossExt for CubeBackend {
    fn rank_loss_packed(rewards: FloatTensor<Self>, ks: Vec<u32>) -> FloatTensor<Self> {
        let rewards: CubeTensor = into_contiguous(rewards); // (N,) f32
        let n = rewards.meta.shape().num_elements();
        let p = ks.len();
        let out = empty_like(&rewards, &[n + p]); // (N + P,)
        let groups = ((p as u32).div_ceil(WORKGROUP), 1);
        kernel().launch(groups, &rewards, &out, &kernel_info(n, &ks));
        WGSL_LAUNCHES.add();
        out
    }
}
