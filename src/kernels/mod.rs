//! Hand-written WGSL kernels wired into burn (backend extensions with Autodiff backward steps),
//! each with a reference twin in plain burn ops that the tests compare against.

pub mod attention;
mod attention_launch;
mod rank_ext;
pub mod ranking_loss;

pub use rank_ext::kernel_launches;
pub use ranking_loss::{bench_rank_loss, ranking_loss, ranking_loss_reference};
