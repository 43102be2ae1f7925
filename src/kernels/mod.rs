//! Hand-written WGSL kernels wired into burn (backend extensions with Autodiff backward steps),
//! each with a reference twin in plain burn ops that the tests compare against.
//!
//! One folder per kernel, each with the same parts: `mod.rs` (the entry the crate calls),
//! `launch.rs`, `plan.rs` (work sizes, where there is a plan), `backward.rs`, `reference.rs` (the
//! reference twin). Helpers shared by the kernels (`wgsl_unroll`) sit here.

pub mod attention;
pub mod ranking_loss;
mod wgsl_unroll;

pub use ranking_loss::{bench_rank_loss, kernel_launches, ranking_loss, ranking_loss_reference};

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
