//! Launching the dropout WGSL kernel (`shaders/dropout.wgsl`) on CubeCL/wgpu: the workgroup
//! size, the `info` binding, buffers and a 2-D workgroup grid (a dimension holds at most 65,535
//! workgroups), and the launch counter the tests read.

use super::DropoutExt;
use crate::util::tensors::count_upload;
use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::{
    into_contiguous, kernel_source, CubeBackend, CubeTensor, KernelSource, SourceKernel,
    SourceTemplate,
};
use burn::cubecl::prelude::KernelId;
use burn::cubecl::server::KernelArguments;
use burn::cubecl::{CubeCount, CubeDim};
use derive_new::new;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Invocations (one per element) in a workgroup.
const WORKGROUP: u32 = 256;
/// Workgroups along x before the grid grows along y.
const MAX_GROUPS_X: u32 = 65_535;

static KERNEL_LAUNCHES: AtomicUsize = AtomicUsize::new(0);

/// How many times the dropout kernel has been launched in this process (forward and backward).
pub fn kernel_launches() -> usize {
    KERNEL_LAUNCHES.load(Ordering::Relaxed)
}

kernel_source!(DropoutRaw, "../../../shaders/dropout.wgsl");

struct DropoutKernel {
    cube_dim: CubeDim,
}

impl KernelSource for DropoutKernel {
    fn source(&self) -> SourceTemplate {
        DropoutRaw
            .source()
            .register("wg", self.cube_dim.x.to_string())
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info(self.cube_dim)
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

/// The workgroup size and the final WGSL text of the kernel.
pub fn source() -> (u32, String) {
    let k = DropoutKernel {
        cube_dim: CubeDim::new_3d(WORKGROUP, 1, 1),
    };
    (WORKGROUP, k.source().complete())
}

/// Workgroups for `n` elements as (x, y).
fn grid(n: usize) -> (u32, u32) {
    let groups = (n as u64).div_ceil(WORKGROUP as u64).max(1);
    let x = groups.min(MAX_GROUPS_X as u64);
    (x as u32, groups.div_ceil(x) as u32)
}

impl DropoutExt for CubeBackend {
    fn dropout_apply(x: FloatTensor<Self>, words: Vec<u32>) -> FloatTensor<Self> {
        let x: CubeTensor = into_contiguous(x);
        let n = x.meta.shape().num_elements();
        let client = x.client.clone();
        let out = CubeTensor::new_contiguous(
            client.clone(),
            x.device.clone(),
            x.meta.shape().clone(),
            client.empty(n * x.dtype.size()),
            x.dtype,
        );
        let info = client.create_from_slice(bytemuck::cast_slice(&words));
        count_upload(std::mem::size_of_val(&words[..]));
        let cube_dim = CubeDim::new_3d(WORKGROUP, 1, 1);
        let (gx, gy) = grid(n);
        client.launch(
            Box::new(SourceKernel::new(DropoutKernel { cube_dim }, cube_dim)),
            CubeCount::Static(gx, gy, 1),
            KernelArguments::new().with_buffers(vec![
                x.handle.clone().binding(),
                out.handle.clone().binding(),
                info.binding(),
            ]),
        );
        KERNEL_LAUNCHES.fetch_add(1, Ordering::Relaxed);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_covers_every_element_within_the_limits() {
        assert_eq!(grid(1), (1, 1));
        assert_eq!(grid(256 * 10 + 1), (11, 1));
        let n = 256 * 70_000;
        let (x, y) = grid(n);
        assert!(x <= MAX_GROUPS_X && (x as usize * y as usize * 256) >= n);
    }
}
