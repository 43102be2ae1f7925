//! Fused causal multi-head attention (FlashAttention-2 style) as a burn backend extension.
//!
//! Grouped-query attention: k and v may have fewer heads than q (`nkv` dividing `nh`); query head
//! h reads key/value head h / (nh / nkv), as `transformers`' `repeat_kv` orders them, without a
//! copy per query head. dK and dV sum over the group's query heads (each CPU task, and each WGSL
//! dK/dV workgroup, owns one key/value head and loops over its group: no atomics).
//!
//! `causal_attention` is what the model calls. On a wgpu (cubecl) device it runs the WGSL kernels
//! in `shaders/` — forward writes O and the row log-sum-exp L; under autodiff a `Backward` step
//! recomputes the scores tile by tile to get dQ, dK, dV — so no (T × Tk) matrix is ever stored.
//! On the CPU backend (Flex) the same two steps run per (sequence, head) block in `cpu.rs`.
//! Elsewhere, or with the kernels turned off ([`crate::kernels::set_kernels_disabled`]), it is
//! the reference twin [`attention_reference`], which the tests compare against.
//!
//! Parts (the same for every kernel): this entry and the extension trait; `launch.rs` (the WGSL
//! launcher on cubecl); `cpu.rs` (the CPU implementation); `plan.rs` (work sizes per adapter);
//! `backward.rs` (the autodiff backward step); `reference.rs` (the reference twin in plain burn
//! ops).

mod backward;
mod cpu;
mod heads;
mod launch;
pub mod plan;
mod reference;

pub use cpu::{cpu_launches, cpu_qkv_launches};
pub use heads::{source as heads_source, wgsl_launches as heads_wgsl_launches};
pub use launch::{sources, wgsl_launches};
pub use reference::attention_reference;

use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch};
use burn::prelude::*;
use burn::tensor::DType;

/// The score of a key a query may not see, before the softmax, in every implementation: the
/// reference twin, the CPU kernel and the WGSL forward (its `const MASK`, held equal by a test).
/// Far below any real score, so the key's weight is exactly 0; finite, because `-inf` before the
/// softmax gives NaN losses in burn 0.22.1 where a finite value trains normally.
pub const MASK_VALUE: f32 = -1.0e9;

/// Test hook: `RLHF_BREAK_KERNEL=attention` scales the fused attention's forward output by 1.001
/// in this process, so the tests can watch `rlhf doctor` fail and a GPU pipeline refuse to
/// train. Leave it unset in real runs.
pub const BREAK_KERNEL_ENV: &str = "RLHF_BREAK_KERNEL";

/// True when [`BREAK_KERNEL_ENV`] names the attention kernel (read once per process).
fn broken_on_purpose() -> bool {
    static BROKEN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *BROKEN.get_or_init(|| std::env::var(BREAK_KERNEL_ENV).is_ok_and(|v| v == "attention"))
}

/// Fused attention kernels; implemented for cubecl (wgpu) in `launch.rs` and for the CPU (Flex)
/// in `cpu.rs`, generated for Fusion, and differentiable through the `Autodiff` implementation in
/// `backward.rs`.
#[backend_extension(Autodiff, Cube, Fusion, Flex)]
pub trait AttentionExt: Backend {
    /// q (B, nh, T, hs), k, v (B, nkv, Tk, hs) with nkv dividing nh, pad (B, Tk) 1.0 at padding
    /// keys → (O (B, nh, T, hs), L (B, nh, T) log-sum-exp of each row's scaled scores).
    #[fusion(meta = fwd_meta)]
    fn flash_attention_fwd(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        t_past: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The forward's inputs, O, L and dO (B, nh, T, hs) → (dQ, dK, dV), shaped like q, k, v
    /// (dK and dV summed over each key/value head's group of query heads).
    #[allow(clippy::too_many_arguments)]
    #[fusion(meta = bwd_meta)]
    fn flash_attention_bwd(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        d_out: FloatTensor<Self>,
        t_past: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Attention straight from the fused c_attn output. On the CPU backend the heads of Q, K and V
/// are strided views into `qkv` (no copy), and the backward writes dQ, dK and dV into one
/// (B, T, 3C) gradient; on wgpu one dispatch splits the heads out and one writes the gradient
/// back (`heads.rs`). Composed of burn ops the split is a narrow and a reshape per part, which
/// copies each part forward and again backward, and its backward adds three zero-padded
/// (B, T, 3C) gradients: a tenth of a small model's training step on the CPU, a dozen
/// dispatches per layer on wgpu.
#[backend_extension(Autodiff, Cube, Fusion, Flex)]
pub trait AttentionQkvExt: Backend {
    /// qkv (B, T, 3C) as c_attn makes it, pad (B, T) 1.0 at padding keys, n_head
    /// → (O (B, nh, T, hs), L (B, nh, T)), as [`AttentionExt::flash_attention_fwd`] with t_past 0.
    #[fusion(meta = qkv_fwd_meta)]
    fn flash_attention_qkv_fwd(
        qkv: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        n_head: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The forward's inputs, O, L and dO (B, nh, T, hs) → d qkv (B, T, 3C).
    #[fusion(meta = qkv_bwd_meta)]
    fn flash_attention_qkv_bwd(
        qkv: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        d_out: FloatTensor<Self>,
        n_head: usize,
    ) -> FloatTensor<Self>;
}

fn fwd_meta(
    q: &TensorSpec,
    _k: &TensorSpec,
    _v: &TensorSpec,
    _pad: &TensorSpec,
    _t_past: &usize,
) -> (TensorSpec, TensorSpec) {
    let [b, nh, t, _hs] = q.shape.dims::<4>();
    let lse = TensorSpec::new([b, nh, t].into_iter().collect(), q.dtype);
    (q.clone(), lse)
}

#[allow(clippy::too_many_arguments)]
fn bwd_meta(
    q: &TensorSpec,
    k: &TensorSpec,
    v: &TensorSpec,
    _pad: &TensorSpec,
    _out: &TensorSpec,
    _lse: &TensorSpec,
    _d_out: &TensorSpec,
    _t_past: &usize,
) -> (TensorSpec, TensorSpec, TensorSpec) {
    (q.clone(), k.clone(), v.clone())
}

fn qkv_fwd_meta(qkv: &TensorSpec, _pad: &TensorSpec, n_head: &usize) -> (TensorSpec, TensorSpec) {
    let [b, t, c3] = qkv.shape.dims::<3>();
    let nh = (*n_head).max(1);
    let out = TensorSpec::new([b, nh, t, c3 / 3 / nh].into_iter().collect(), qkv.dtype);
    let lse = TensorSpec::new([b, nh, t].into_iter().collect(), qkv.dtype);
    (out, lse)
}

fn qkv_bwd_meta(
    qkv: &TensorSpec,
    _pad: &TensorSpec,
    _out: &TensorSpec,
    _lse: &TensorSpec,
    _d_out: &TensorSpec,
    _n_head: &usize,
) -> TensorSpec {
    qkv.clone()
}

/// Head sizes the kernels take: multiples of 4 up to 128 (they keep per-row vectors in
/// registers, 4 floats at a time).
pub fn head_size_supported(hs: usize) -> bool {
    hs.is_multiple_of(4) && (4..=128).contains(&hs)
}

/// Query heads per key/value head: `nh / nkv`.
///
/// # Panics
/// When `nkv` does not divide `nh` (a shape error, as burn's own shape checks panic; the model
/// configs are validated to rule it out: [`crate::config::LlamaConfig::validate`]).
pub fn kv_group(nh: usize, nkv: usize) -> usize {
    assert!(
        nkv > 0 && nh.is_multiple_of(nkv),
        "attention: {nkv} key/value heads must divide {nh} query heads"
    );
    nh / nkv
}

/// True when the WGSL kernels can serve these inputs: a cubecl (wgpu) device, f32, and a
/// [supported](head_size_supported) head size.
pub fn kernel_applies(q: &Tensor<4>) -> bool {
    wgsl_applies(&q.device(), q.dtype(), q.dims())
}

/// The WGSL kernels' condition on the device, the element type and q's (B, nh, T, hs).
fn wgsl_applies(device: &Device, dtype: DType, [b, nh, t, hs]: [usize; 4]) -> bool {
    super::is_kernel_device(device)
        && dtype == DType::F32
        && head_size_supported(hs)
        && t > 0
        && b * nh <= 65_535
}

/// True when the CPU kernel (`cpu.rs`) serves these inputs: the Flex backend, f32, any head size.
pub fn cpu_kernel_applies(q: &Tensor<4>) -> bool {
    let [_, _, t, hs] = q.dims();
    cpu_applies(&q.device(), q.dtype(), t, hs)
}

/// The CPU kernel's condition on the device, the element type, T and the head size.
fn cpu_applies(device: &Device, dtype: DType, t: usize, hs: usize) -> bool {
    super::cpu::is_cpu_kernel_device(device) && dtype == DType::F32 && t > 0 && hs > 0
}

/// The kernels' padding input: (B, Tk) 1.0 at padding keys, all 0.0 without a mask.
fn pad_input(key_pad: Option<Tensor<2, Bool>>, b: usize, tk: usize, device: &Device) -> Tensor<2> {
    match key_pad {
        Some(p) => p.float(),
        None => Tensor::<2>::zeros([b, tk], device),
    }
}

/// Causal multi-head (or grouped-query) attention with an optional key-padding mask and KV-cache
/// offset.
///
/// Query `i` sits at absolute position `t_past + i` and attends to keys `0..=t_past + i` that are
/// not padding; same semantics (including fully padded rows) as `attention_reference`. Query head
/// h reads key/value head h / (nh / nkv) ([`kv_group`]; panics when nkv does not divide nh).
/// # Shapes
/// q: (B, nh, T, hs); k, v: (B, nkv, Tk, hs) with Tk = t_past + T; key_pad: (B, Tk), true at
/// padding → (B, nh, T, hs)
pub fn causal_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    key_pad: Option<Tensor<2, Bool>>,
    t_past: usize,
) -> Tensor<4> {
    kv_group(q.dims()[1], k.dims()[1]);
    assert_eq!(k.dims(), v.dims(), "attention: k and v shapes differ");
    if !(kernel_applies(&q) || cpu_kernel_applies(&q)) {
        return attention_reference(q, k, v, key_pad, t_past);
    }
    let pad = pad_input(key_pad, q.dims()[0], k.dims()[2], &q.device()); // (B, Tk)
    let (out, _lse) = <Dispatch as AttentionExt>::flash_attention_fwd(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        pad.into_dispatch(),
        t_past,
    );
    let out = Tensor::from_dispatch(out); // (B, nh, T, hs)
    if broken_on_purpose() {
        return out.mul_scalar(1.001);
    }
    out
}

/// The heads of Q, K and V of the fused c_attn output: qkv (B, T, 3C) → 3 × (B, nh, T, hs).
pub fn split_heads(qkv: Tensor<3>, n_head: usize) -> [Tensor<4>; 3] {
    let [b, t, c3] = qkv.dims();
    let c = c3 / 3;
    [0, 1, 2].map(|i| {
        qkv.clone()
            .narrow(2, i * c, c)
            .reshape([b, t, n_head, c / n_head.max(1)])
            .swap_dims(1, 2)
    })
}

/// Causal self-attention over the fused c_attn output, no KV cache: on the CPU backend the heads
/// are read in place, on wgpu split out by one dispatch ([`AttentionQkvExt`]); where the kernels
/// are off, [`split_heads`] then [`causal_attention`].
/// # Shapes
/// qkv: (B, T, 3C); key_pad: (B, T), true at padding → (B, nh, T, hs)
pub fn causal_attention_qkv(
    qkv: Tensor<3>,
    n_head: usize,
    key_pad: Option<Tensor<2, Bool>>,
) -> Tensor<4> {
    let [b, t, c3] = qkv.dims();
    // the heads must tile C exactly for the views
    let applies = n_head > 0 && c3 % (3 * n_head) == 0 && {
        let hs = c3 / (3 * n_head);
        // the heads kernel indexes qkv with 32 bits
        let wgsl = wgsl_applies(&qkv.device(), qkv.dtype(), [b, n_head, t, hs])
            && u32::try_from(b * t * c3).is_ok();
        wgsl || cpu_applies(&qkv.device(), qkv.dtype(), t, hs)
    };
    if !applies {
        let [q, k, v] = split_heads(qkv, n_head);
        return causal_attention(q, k, v, key_pad, 0);
    }
    let pad = pad_input(key_pad, b, t, &qkv.device()); // (B, T)
    let (out, _lse) = <Dispatch as AttentionQkvExt>::flash_attention_qkv_fwd(
        qkv.into_dispatch(),
        pad.into_dispatch(),
        n_head,
    );
    Tensor::from_dispatch(out) // (B, nh, T, hs)
}
