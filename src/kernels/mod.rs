//! Hand-written WGSL kernels wired into burn (backend extensions with Autodiff backward steps),
//! each with a reference twin in plain burn ops that the tests compare against.

pub mod attention;
mod attention_launch;
pub mod attention_plan;
mod rank_ext;
pub mod ranking_loss;
mod wgsl_unroll;

pub use rank_ext::kernel_launches;

use burn::backend::DispatchDevice;
use burn::tensor::Device;

/// True when `device` (with or without autodiff) runs on CubeCL, i.e. wgpu in this build: where
/// the WGSL kernels apply.
pub fn is_kernel_device(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Cube(_)
    )
}
pub use ranking_loss::{bench_rank_loss, ranking_loss, ranking_loss_reference};
