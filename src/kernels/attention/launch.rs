//! Launching the fused attention WGSL kernels (`shaders/attention_*.wgsl`) on a cubecl (wgpu)
//! tensor: work sizes per adapter (`plan.rs`), loop unrolling and `SourceTemplate`
//! placeholders, buffers and workgroup counts.
//!
//! Kernels: forward (O, L), backward dK/dV, backward dQ. All expect contiguous f32 tensors
//! q (B, nh, T, hs), k, v (B, nkv, Tk, hs) with nkv dividing nh, pad (B, Tk) with 1.0 at padding
//! keys. The group size nh / nkv travels in the `info` buffer, not in the kernel text:
//! grouped-query attention adds no variant. The forward and dQ kernels run a workgroup per
//! (sequence, query head, block of rows); the dK/dV kernel one per (sequence, key/value head,
//! block of keys), which loops over the head's group of query heads.

use super::plan::{adapter_is_cpu, plan, plan_override, AttnPlan};
use super::{kv_group, AttentionExt};
use crate::kernels::wgsl_1d::empty_like;
use crate::kernels::wgsl_unroll::unroll;
use crate::kernels::LaunchCounter;
use burn::backend::ops::FloatTensorOps;
use burn::backend::wgpu::{
    into_contiguous, CubeBackend, CubeTensor, KernelSource, SourceKernel, SourceTemplate,
};
use burn::cubecl::{prelude::KernelId, server::KernelArguments, CubeCount, CubeDim};

static WGSL_LAUNCHES: LaunchCounter = LaunchCounter::new();

/// Fused attention WGSL kernels launched so far in this process (the forward and each backward
/// kernel count one). Lets tests prove that the kernel path is taken.
pub fn wgsl_launches() -> usize {
    WGSL_LAUNCHES.get()
}

const FWD: &str = include_str!("../../../shaders/attention_fwd.wgsl");
const DKV: &str = include_str!("../../../shaders/attention_bwd_dkv.wgsl");
const DQ: &str = include_str!("../../../shaders/attention_bwd_dq.wgsl");

/// Which of the three kernels, with its compile-time constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pass {
    Forward,
    BackwardDkv,
    BackwardDq,
}

/// One kernel specialisation: head size `hs` and the adapter's work sizes.
#[derive(Debug, Clone, Copy)]
struct AttnKernel {
    pass: Pass,
    hs: usize,
    plan: AttnPlan,
}

impl KernelSource for AttnKernel {
    fn source(&self) -> SourceTemplate {
        let raw = match self.pass {
            Pass::Forward => FWD,
            Pass::BackwardDkv => DKV,
            Pass::BackwardDq => DQ,
        };
        let p = self.plan;
        let src = unroll(raw, &unrolled_loops(self.hs, p));
        SourceTemplate::new(src)
            .register("hs", self.hs.to_string())
            .register("wg", p.wg.to_string())
            .register("rows", p.rows.to_string())
            .register("tile", p.tile.to_string())
    }
    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((self.pass, self.hs, self.plan))
    }
    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

/// Head size above which the loops over the head size stay loops.
const MAX_UNROLLED_HS: usize = 32;

/// The loop bounds `wgsl_unroll` expands for head size `hs` and `plan`. Unrolled, a loop over
/// the head size (`HS4`) turns the per-row vectors into registers (1.2× faster on lavapipe at
/// head size 64), but compile time grows with the registers a shader holds: on Mesa 25's
/// lavapipe the head-size-64 variants took 7-14 s each unrolled and 5-10 s not (`rlhf kernels
/// --compile-times`), and a first training step compiles three. So: `HS4` up to head size 32,
/// `R` only where it is 1 (the GPU plans, where that just removes the loop). The shaders keep
/// the compiler itself from unrolling the `R` loops (see their headers).
fn unrolled_loops(hs: usize, plan: AttnPlan) -> Vec<(&'static str, usize)> {
    let mut bounds = Vec::with_capacity(2);
    if hs <= MAX_UNROLLED_HS {
        bounds.push(("HS4", hs / 4));
    }
    if plan.rows == 1 {
        bounds.push(("R", 1));
    }
    bounds
}

/// The final WGSL text of the three kernels (forward, backward dK/dV, backward dQ) for head size
/// `hs` and `plan`, each with its short name (`fwd`, `bwd_dkv`, `bwd_dq`).
pub fn sources(hs: usize, plan: AttnPlan) -> Vec<(&'static str, String)> {
    [
        (Pass::Forward, "fwd"),
        (Pass::BackwardDkv, "bwd_dkv"),
        (Pass::BackwardDq, "bwd_dq"),
    ]
    .into_iter()
    .map(|(pass, name)| (name, AttnKernel { pass, hs, plan }.source().complete()))
    .collect()
}

/// The adapter's plan for head size `hs` (see `plan.rs`), unless a test forces one.
fn pick_plan(t: &CubeTensor, hs: usize) -> AttnPlan {
    if let Some(p) = plan_override() {
        return p;
    }
    let hw = &t.client.properties().hardware;
    plan(
        hs,
        hw.max_shared_memory_size,
        hw.max_units_per_cube as usize,
        adapter_is_cpu(),
    )
}

/// The sizes of a launch: q (B, nh, T, hs), k, v (B, nkv, Tk, hs).
struct Sizes {
    b: usize,
    nh: usize,
    nkv: usize,
    t: usize,
    tk: usize,
    hs: usize,
}

/// [B, nh, T, Tk, t_past, bits(1/sqrt(hs)), nh / nkv] as the kernels' `info` buffer.
fn info(q: &CubeTensor, k: &CubeTensor, t_past: usize) -> (Vec<u32>, Sizes) {
    let [b, nh, t, hs] = q.meta.shape().dims::<4>();
    let [_, nkv, tk, _] = k.meta.shape().dims::<4>();
    let scale = 1.0f32 / (hs as f32).sqrt();
    let v = vec![
        b as u32,
        nh as u32,
        t as u32,
        tk as u32,
        t_past as u32,
        scale.to_bits(),
        kv_group(nh, nkv) as u32,
    ];
    let sizes = Sizes {
        b,
        nh,
        nkv,
        t,
        tk,
        hs,
    };
    (v, sizes)
}

fn launch(
    kernel: AttnKernel,
    groups: (u32, u32),
    like: &CubeTensor,
    buffers: Vec<&CubeTensor>,
    info: &[u32],
) {
    let info_h = like.client.create_from_slice(bytemuck::cast_slice(info));
    crate::util::tensors::count_upload(std::mem::size_of_val(info));
    let mut bindings: Vec<_> = buffers.iter().map(|t| t.handle.clone().binding()).collect();
    bindings.push(info_h.binding());
    let cube_dim = CubeDim::new_3d(kernel.plan.wg as u32, 1, 1);
    like.client.launch(
        Box::new(SourceKernel::new(kernel, cube_dim)),
        CubeCount::Static(groups.0, groups.1, 1),
        KernelArguments::new().with_buffers(bindings),
    );
    WGSL_LAUNCHES.add();
}

impl AttentionExt for CubeBackend {
    fn flash_attention_fwd(
        q: CubeTensor,
        k: CubeTensor,
        v: CubeTensor,
        pad: CubeTensor,
        t_past: usize,
    ) -> (CubeTensor, CubeTensor) {
        let (q, k, v, pad) = (
            into_contiguous(q),
            into_contiguous(k),
            into_contiguous(v),
            into_contiguous(pad),
        );
        let (inf, Sizes { b, nh, t, hs, .. }) = info(&q, &k, t_past);
        let out = empty_like(&q, &[b, nh, t, hs]); // (B, nh, T, hs)
        let lse = empty_like(&q, &[b, nh, t]); // (B, nh, T)
        let plan = pick_plan(&q, hs);
        let kernel = AttnKernel {
            pass: Pass::Forward,
            hs,
            plan,
        };
        let groups = (t.div_ceil(plan.block()) as u32, (b * nh) as u32);
        launch(kernel, groups, &q, vec![&q, &k, &v, &pad, &out, &lse], &inf);
        (out, lse)
    }

    fn flash_attention_bwd(
        q: CubeTensor,
        k: CubeTensor,
        v: CubeTensor,
        pad: CubeTensor,
        out: CubeTensor,
        lse: CubeTensor,
        d_out: CubeTensor,
        t_past: usize,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        let (q, k, v, pad) = (
            into_contiguous(q),
            into_contiguous(k),
            into_contiguous(v),
            into_contiguous(pad),
        );
        let (lse, d_out) = (into_contiguous(lse), into_contiguous(d_out));
        // D_i = rowsum(dO ∘ O): (B, nh, T, 1), read as (B, nh, T)
        let dd = into_contiguous(Self::float_sum_dim(Self::float_mul(d_out.clone(), out), 3));
        let (inf, s) = info(&q, &k, t_past);
        let Sizes {
            b,
            nh,
            nkv,
            t,
            tk,
            hs,
        } = s;
        let dq = empty_like(&q, &[b, nh, t, hs]);
        let dk = empty_like(&q, &[b, nkv, tk, hs]);
        let dv = empty_like(&q, &[b, nkv, tk, hs]);
        let plan = pick_plan(&q, hs);
        let dkv = AttnKernel {
            pass: Pass::BackwardDkv,
            hs,
            plan,
        };
        // a workgroup per (sequence, key/value head, block of keys): it sums over the group
        let groups = (tk.div_ceil(plan.block()) as u32, (b * nkv) as u32);
        launch(
            dkv,
            groups,
            &q,
            vec![&q, &k, &v, &pad, &d_out, &lse, &dd, &dk, &dv],
            &inf,
        );
        let dqk = AttnKernel {
            pass: Pass::BackwardDq,
            hs,
            plan,
        };
        let groups = (t.div_ceil(plan.block()) as u32, (b * nh) as u32);
        launch(
            dqk,
            groups,
            &q,
            vec![&q, &k, &v, &pad, &d_out, &lse, &dd, &dq],
            &inf,
        );
        (dq, dk, dv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WGSL forward masks with the value the reference twin and the CPU kernel use.
    #[test]
    fn the_wgsl_mask_is_mask_value() {
        let line = FWD
            .lines()
            .find(|l| l.trim_start().starts_with("const MASK:"))
            .expect("shaders/attention_fwd.wgsl declares `const MASK: f32`");
        let value = line.split('=').nth(1).expect("const MASK: f32 = <value>;");
        let value: f32 = value.trim().trim_end_matches(';').parse().expect(line);
        assert_eq!(
            value.to_bits(),
            super::super::MASK_VALUE.to_bits(),
            "{line}"
        );
    }
}
