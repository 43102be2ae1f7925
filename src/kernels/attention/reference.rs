//! The reference twin of the fused attention kernels in plain burn ops (matmul → mask → softmax →
//! matmul). It keeps the (T × Tk) score matrix the kernels avoid; `causal_attention` falls back to
//! it where no kernel applies (or with the kernels turned off), and `tests/attention_kernel.rs`
//! compares the kernels' outputs and gradients against it. Grouped-query attention is the plain
//! kind here: each key/value head is repeated for its group of query heads first.

use super::{kv_group, MASK_VALUE};
use burn::prelude::*;
use burn::tensor::activation::softmax;

/// Composed causal attention: the reference twin of the fused kernel.
///
/// Query `i` (0-based among the new tokens) sits at absolute position `t_past + i` and may attend
/// to keys `0..=t_past + i` that are not padding. Query head h reads key/value head
/// h / (nh / nkv) ([`kv_group`]).
/// # Shapes
/// q: (B, nh, T, hs); k, v: (B, nkv, Tk, hs) with Tk = t_past + T; key_pad: (B, Tk)
/// → (B, nh, T, hs)
pub fn attention_reference(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    key_pad: Option<Tensor<2, Bool>>,
    t_past: usize,
) -> Tensor<4> {
    let [b, nh, t, hs] = q.dims();
    let tk = k.dims()[2];
    let device = q.device();
    let group = kv_group(nh, k.dims()[1]);
    let (k, v) = (repeat_kv(k, group), repeat_kv(v, group)); // (B, nh, Tk, hs)
                                                             // (B, nh, T, Tk)
    let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((hs as f64).sqrt());
    // causal: key j is masked for query i when j > t_past + i. tril_mask is true OUTSIDE the
    // lower triangle (j > i + offset): exactly the future keys. (triu_mask(.., 1) would mask the
    // past instead: it is true outside the upper triangle.)
    let causal = Tensor::<2, Bool>::tril_mask([t, tk], t_past as i64, &device); // (T, Tk)
    let mut mask = causal.reshape([1, 1, t, tk]).expand([b, nh, t, tk]);
    if let Some(pad) = key_pad {
        let pad = pad.reshape([b, 1, 1, tk]).expand([b, nh, t, tk]);
        mask = mask.bool_or(pad);
    }
    let att = softmax(scores.mask_fill(mask, MASK_VALUE), 3);
    att.matmul(v)
}

/// Each key/value head repeated for the `group` query heads that read it (query head h reads
/// key/value head h / group, as `transformers`' `repeat_kv`); unchanged when `group` is 1.
/// (B, nkv, Tk, hs) → (B, nkv·group, Tk, hs)
fn repeat_kv(x: Tensor<4>, group: usize) -> Tensor<4> {
    if group == 1 {
        return x;
    }
    let [b, nkv, tk, hs] = x.dims();
    x.reshape([b, nkv, 1, tk, hs])
        .expand([b, nkv, group, tk, hs])
        .reshape([b, nkv * group, tk, hs])
}
