//! The sum of squares of many tensors (a step's gradients, for their global norm) on wgpu:
//! `shaders/sum_squares.wgsl` writes one tensor's partial sums into its row of a table and copies
//! the rest through, once per tensor, and the finished table is summed once. burn's ops take
//! three dispatches per tensor (square, a zeroed output, an atomic sum); this takes one per tensor
//! and one more, and every sum runs in a fixed order.
//!
//! Parts: this entry and the extension trait [`SumSquaresExt`]; `launch.rs` (the WGSL kernel on
//! CubeCL/wgpu). The reference is `Σ_t (g_t²).sum()` in burn ops, which the other devices and
//! `--no-kernels` run ([`sum_of_squares`]).

mod launch;

pub use launch::{source, wgsl_launches, SLOTS};

use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Shape};
use burn::prelude::*;
use burn::tensor::DType;

fn same_shape(table: &Shape, _g: &Shape, _row: &u32) -> Shape {
    table.clone()
}

#[backend_extension(Cube, Fusion)]
pub trait SumSquaresExt: Backend {
    /// table (R·SLOTS,), g (any shape), row < R → the table with row `row` holding g's partial
    /// sums of squares (in its first slots; the others as they were).
    #[fusion(dtype = table, shape = same_shape(table, g, row))]
    fn sum_squares_into(
        table: FloatTensor<Self>,
        g: FloatTensor<Self>,
        row: u32,
    ) -> FloatTensor<Self>;
}

/// Σ over `tensors` of Σ x², as (1,) on their device (none: `None`): the WGSL kernel on wgpu
/// with the kernels on, burn ops elsewhere. Every tensor must be on the same device.
pub fn sum_of_squares(tensors: Vec<Tensor<1>>) -> Option<Tensor<1>> {
    let first = tensors.first()?;
    let device = first.device();
    let kernel = super::is_kernel_device(&device)
        && tensors
            .iter()
            .all(|t| t.dtype() == DType::F32 && t.dims()[0] < 1 << 31)
        && u32::try_from(tensors.len() * SLOTS as usize).is_ok();
    if !kernel {
        return tensors
            .into_iter()
            .map(|t| t.square().sum())
            .reduce(|a, b| a + b);
    }
    let rows = tensors.len();
    let mut table = Tensor::<1>::zeros([rows * SLOTS as usize], &device).into_dispatch();
    for (row, t) in tensors.into_iter().enumerate() {
        table = <Dispatch as SumSquaresExt>::sum_squares_into(table, t.into_dispatch(), row as u32);
    }
    Some(Tensor::<1>::from_dispatch(table).sum_dim(0))
}
