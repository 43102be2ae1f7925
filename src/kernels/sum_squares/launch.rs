//! Launching the sum-of-squares WGSL kernel (`shaders/sum_squares.wgsl`) on CubeCL/wgpu: the
//! workgroup size, the slots per row (the most workgroups one call uses) and how many a tensor
//! of N elements takes.

use super::SumSquaresExt;
use crate::kernels::wgsl_1d::{empty_like, Wgsl1d};
use crate::kernels::LaunchCounter;
use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::{into_contiguous, CubeBackend, CubeTensor};

/// Invocations in a workgroup; a power of two (the reduction halves it).
const WORKGROUP: u32 = 256;
/// Partial sums per tensor: the most workgroups one call runs.
pub const SLOTS: u32 = 64;
/// Elements each invocation takes at least before a call uses another workgroup.
const PER_INVOCATION: u64 = 64;

static WGSL_LAUNCHES: LaunchCounter = LaunchCounter::new();

/// How many times the sum-of-squares kernel has been launched in this process.
pub fn wgsl_launches() -> usize {
    WGSL_LAUNCHES.get()
}

fn kernel() -> Wgsl1d {
    Wgsl1d {
        name: "sum_squares",
        text: include_str!("../../../shaders/sum_squares.wgsl"),
        wg: WORKGROUP,
        extra: &[("slots", SLOTS)],
    }
}

/// The workgroup size and the final WGSL text of the kernel.
pub fn source() -> (u32, String) {
    (WORKGROUP, kernel().final_text())
}

/// Workgroups for a tensor of `n` elements: one per 16,384 elements, 1 to [`SLOTS`].
fn groups(n: usize) -> u32 {
    let per_group = WORKGROUP as u64 * PER_INVOCATION;
    (n as u64).div_ceil(per_group).clamp(1, SLOTS as u64) as u32
}

impl SumSquaresExt for CubeBackend {
    fn sum_squares_into(
        table: FloatTensor<Self>,
        g: FloatTensor<Self>,
        row: u32,
    ) -> FloatTensor<Self> {
        let [table, g]: [CubeTensor; 2] = [table, g].map(into_contiguous);
        let total = table.meta.shape().num_elements();
        let n = g.meta.shape().num_elements();
        let out = empty_like(&table, &[total]);
        let k = groups(n);
        let info = [n as u32, row, k, total as u32];
        kernel().launch_buffers((k, 1), &[&table, &g, &out], &info);
        WGSL_LAUNCHES.add();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tensor_takes_one_workgroup_per_16k_elements_up_to_the_slots() {
        assert_eq!(groups(0), 1);
        assert_eq!(groups(16_384), 1);
        assert_eq!(groups(16_385), 2);
        assert_eq!(groups(1 << 30), SLOTS);
    }
}
