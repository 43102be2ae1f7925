//! Work sizes of the fused attention kernels per adapter: invocations per workgroup, rows (or
//! keys) per invocation, and rows/keys per workgroup-memory tile. See the shader headers.
//!
//! GPUs run one row per thread in workgroups as wide as the tile. CPU adapters (wgpu
//! `DeviceType::Cpu`, e.g. Mesa lavapipe) run a workgroup's invocations 8 at a time in SIMD lanes
//! and turn every memory load into a per-lane scalar loop, so there the kernels do best with one
//! SIMD vector per workgroup (8 invocations) and many rows per invocation, which reuses each
//! loaded key or query row R times. Measured with `rlhf bench attention` on lavapipe (T = 256,
//! hs 32/64, fwd+bwd): R = 1 → 4 → 8 → 16 took 1979/3495 → 626/1291 → 377/755 → 288/530 ms.
//! R is capped by R·hs ≤ 512 (16 rows at hs ≤ 32, 8 at hs 64, 4 at hs 128) to bound the
//! per-invocation arrays. Which loops are unrolled, and why not the rows loop, is in `launch.rs`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Sizes of one launch; the same plan serves the forward and both backward kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttnPlan {
    /// Invocations per workgroup.
    pub wg: usize,
    /// Query rows (keys, in the dK/dV kernel) per invocation.
    pub rows: usize,
    /// Rows or keys per workgroup-memory tile.
    pub tile: usize,
}

impl AttnPlan {
    /// Rows (or keys) one workgroup covers.
    pub fn block(&self) -> usize {
        self.wg * self.rows
    }
}

static CPU_ADAPTER: AtomicBool = AtomicBool::new(false);
/// 0: no override; otherwise wg | rows << 16 | tile << 32.
static OVERRIDE: AtomicU64 = AtomicU64::new(0);

/// Records whether the wgpu adapter in use is a CPU (set by `crate::device::select`). Process
/// wide: this program opens one wgpu adapter per process.
pub fn set_adapter_is_cpu(cpu: bool) {
    CPU_ADAPTER.store(cpu, Ordering::Relaxed);
}

/// Whether the wgpu adapter in use is a CPU (lavapipe, SwiftShader, WARP).
pub fn adapter_is_cpu() -> bool {
    CPU_ADAPTER.load(Ordering::Relaxed)
}

/// Forces a plan for every later launch in this process (tests cover the GPU plan on lavapipe
/// with it), or restores the per-adapter choice with `None`.
pub fn set_plan_override(plan: Option<AttnPlan>) {
    let v = plan.map_or(0, |p| {
        p.wg as u64 | (p.rows as u64) << 16 | (p.tile as u64) << 32
    });
    OVERRIDE.store(v, Ordering::Relaxed);
}

/// The plan forced by `set_plan_override`, if any (checked by the launcher).
pub(crate) fn plan_override() -> Option<AttnPlan> {
    let v = OVERRIDE.load(Ordering::Relaxed);
    (v != 0).then_some(AttnPlan {
        wg: (v & 0xffff) as usize,
        rows: ((v >> 16) & 0xffff) as usize,
        tile: (v >> 32) as usize,
    })
}

/// The plan for head size `hs` on an adapter with `shared` bytes of workgroup memory and at most
/// `units` invocations per workgroup; `cpu` when the adapter is a CPU.
pub fn plan(hs: usize, shared: usize, units: usize, cpu: bool) -> AttnPlan {
    let shared = shared.max(16 * 1024);
    let units = units.max(64);
    // two (tile × hs) f32 tiles plus two f32 vectors and a few scalars
    let tile = [64usize, 32, 16, 8]
        .into_iter()
        .find(|&b| 2 * b * hs * 4 + 2 * b * 4 + 64 <= shared && b <= units)
        .unwrap_or(8);
    if cpu {
        // R·hs ≤ 512 floats per private array
        let rows = (512 / hs.max(4)).clamp(1, 16);
        AttnPlan { wg: 8, rows, tile }
    } else {
        AttnPlan {
            wg: tile,
            rows: 1,
            tile,
        }
    }
}
