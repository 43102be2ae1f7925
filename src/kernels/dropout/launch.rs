//! Launching the dropout WGSL kernel (`shaders/dropout.wgsl`) on CubeCL/wgpu: the workgroup
//! size, the `info` binding, buffers and a 2-D workgroup grid (a dimension holds at most 65,535
//! workgroups), and the launch counter the tests read.

use super::DropoutExt;
use crate::kernels::wgsl_1d::{empty_like, grid, Wgsl1d};
use crate::kernels::LaunchCounter;
use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::{into_contiguous, CubeBackend, CubeTensor};

/// Invocations (one per element) in a workgroup.
const WORKGROUP: u32 = 256;
static WGSL_LAUNCHES: LaunchCounter = LaunchCounter::new();

/// How many times the dropout kernel has been launched in this process (forward and backward).
pub fn wgsl_launches() -> usize {
    WGSL_LAUNCHES.get()
}

/// The kernel at its workgroup size.
fn kernel() -> Wgsl1d {
    Wgsl1d {
        name: "dropout",
        text: include_str!("../../../shaders/dropout.wgsl"),
        wg: WORKGROUP,
        extra: &[],
    }
}

/// The workgroup size and the final WGSL text of the kernel.
pub fn source() -> (u32, String) {
    (WORKGROUP, kernel().final_text())
}

impl DropoutExt for CubeBackend {
    fn dropout_apply(x: FloatTensor<Self>, words: Vec<u32>) -> FloatTensor<Self> {
        let x: CubeTensor = into_contiguous(x);
        let n = x.meta.shape().num_elements();
        let out = empty_like(&x, x.meta.shape());
        kernel().launch(grid(n, WORKGROUP), &x, &out, &words);
        WGSL_LAUNCHES.add();
        out
    }
}
