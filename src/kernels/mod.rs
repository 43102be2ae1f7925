//! Hand-written kernels wired into burn (backend extensions with Autodiff backward steps): WGSL
//! for wgpu, and fused row loops for the CPU backend (Flex; `cpu.rs` holds what they share), each
//! with a reference twin in plain burn ops that the tests compare against.
//!
//! One folder per kernel, each with the same parts: `mod.rs` (the entry the crate calls),
//! `launch.rs`, `plan.rs` (work sizes, where there is a plan), `backward.rs`, `reference.rs` (the
//! reference twin). Helpers shared by the kernels (`wgsl_unroll`, `wgsl_1d`) sit here.

pub mod attention;
pub mod compile_time;
pub mod cpu;
pub mod dropout;
pub mod gelu;
pub mod layer_norm;
pub mod linear;
pub mod ranking_loss;
pub mod selfcheck;
pub mod sum_squares;
pub mod token_logprob;
pub mod translate;
pub mod variants;
mod wgsl_1d;
mod wgsl_unroll;

pub use ranking_loss::{bench_rank_loss, ranking_loss, ranking_loss_reference};

use burn::backend::DispatchDevice;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// One kernel's launches in this process: WGSL dispatches, or calls of a CPU kernel (a forward
/// and each backward count one). Every kernel counts with one, read as `<kernel>::wgsl_launches()`
/// and `<kernel>::cpu_launches()`; tests read them to prove the kernel path ran.
#[derive(Debug)]
pub struct LaunchCounter(AtomicUsize);

impl LaunchCounter {
    /// A counter at 0.
    pub const fn new() -> Self {
        Self(AtomicUsize::new(0))
    }

    /// Counts one launch.
    pub(crate) fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The launches so far.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Default for LaunchCounter {
    fn default() -> Self {
        Self::new()
    }
}

/// Fused WGSL kernels launched in this process, by kernel (a forward and each backward kernel count
/// one). Counted where the kernel is enqueued, which under burn's fusion is another thread than
/// the caller's, so the counts are process wide: a stage reads its own as the difference over
/// its run ([`Launches::since`]), exact because a process runs its stages one at a time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launches {
    /// Fused causal attention (forward, backward dK/dV, backward dQ).
    pub attention: usize,
    /// The K-wise ranking loss (forward and dL/dr in one kernel).
    pub ranking_loss: usize,
    /// Dropout with its mask drawn on the device (forward and backward).
    #[serde(default)]
    pub dropout: usize,
    /// LayerNorm (forward, backward).
    #[serde(default)]
    pub layer_norm: usize,
    /// The target token's log-probability (forward, backward).
    #[serde(default)]
    pub token_logprob: usize,
    /// The split of c_attn's output into heads and the merge of their gradients.
    #[serde(default)]
    pub attention_heads: usize,
    /// The gradient norm's sum of squares (one per gradient tensor).
    #[serde(default)]
    pub sum_squares: usize,
}

impl Launches {
    /// The counts so far.
    pub fn now() -> Self {
        Self {
            attention: attention::wgsl_launches(),
            ranking_loss: ranking_loss::wgsl_launches(),
            dropout: dropout::wgsl_launches(),
            layer_norm: layer_norm::wgsl_launches(),
            token_logprob: token_logprob::wgsl_launches(),
            attention_heads: attention::heads_wgsl_launches(),
            sum_squares: sum_squares::wgsl_launches(),
        }
    }

    /// The launches after `start` was read.
    pub fn since(start: Self) -> Self {
        let n = Self::now();
        Self {
            attention: n.attention - start.attention,
            ranking_loss: n.ranking_loss - start.ranking_loss,
            dropout: n.dropout - start.dropout,
            layer_norm: n.layer_norm - start.layer_norm,
            token_logprob: n.token_logprob - start.token_logprob,
            attention_heads: n.attention_heads - start.attention_heads,
            sum_squares: n.sum_squares - start.sum_squares,
        }
    }
}

static DISABLED: AtomicBool = AtomicBool::new(false);

/// The one switch to the reference path: turns the fused kernels (WGSL on wgpu, the fused loops
/// on the CPU) off, or on again, for this process; every op then runs its reference twin in
/// plain burn ops. `rlhf pipeline --no-kernels` turns it on; `rlhf bench attention` and the
/// kernel tests turn it on around the reference's run and off after it.
pub fn set_kernels_disabled(off: bool) {
    DISABLED.store(off, Ordering::Relaxed);
}

/// True when the kernels were turned off for this process.
pub(crate) fn kernels_disabled() -> bool {
    DISABLED.load(Ordering::Relaxed)
}

/// True when `device` (with or without autodiff) runs on CubeCL, i.e. wgpu in this build, and
/// the kernels are not turned off: where the WGSL kernels apply.
pub fn is_kernel_device(device: &Device) -> bool {
    !kernels_disabled()
        && matches!(
            device.clone().inner().as_dispatch(),
            DispatchDevice::Cube(_)
        )
}
