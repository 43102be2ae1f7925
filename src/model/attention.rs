//! Causal multi-head self-attention (`attn.c_attn`, `attn.c_proj`), with an optional key-padding
//! mask and an optional KV cache for generation.
//!
//! `forward` calls [`crate::kernels::attention::causal_attention`]: the fused WGSL kernel on wgpu,
//! the fused row loops on the CPU backend (which, without a cache, read the heads straight out of
//! c_attn's output: [`crate::kernels::attention::causal_attention_qkv`]); the composed reference
//! [`crate::kernels::attention::attention_reference`] (matmul → mask → softmax → matmul, keeping
//! the (T × Tk) score matrix) is the kernels' twin in the tests.

use super::dense::Dense;
use crate::kernels::attention::{causal_attention, causal_attention_qkv, split_heads};
use burn::module::Module;
use burn::prelude::*;

#[derive(Module, Debug)]
pub struct CausalSelfAttention {
    /// Fused Q, K, V projection, weight (C, 3C) as GPT-2's Conv1D stores it.
    pub c_attn: Dense,
    /// Output projection, weight (C, C).
    pub c_proj: Dense,
    pub n_head: usize,
}

/// Cached keys and values of one layer: each (B, nh, T_past, hs).
#[derive(Clone, Debug)]
pub struct LayerKv {
    pub k: Tensor<4>,
    pub v: Tensor<4>,
}

impl CausalSelfAttention {
    /// # Shapes
    /// - x: (B, T, C) — the new tokens only when a cache is given
    /// - key_pad: (B, T_past + T), true where the key is padding
    /// - returns (B, T, C) and, when `keep` is set, this layer's updated cache
    ///   (B, nh, T_past + T, hs)
    ///
    /// Without a cache to extend or keep, attention reads the heads straight out of c_attn's
    /// output ([`causal_attention_qkv`]: no copies on the CPU backend); training takes this path.
    pub fn forward(
        &self,
        x: Tensor<3>,
        key_pad: Option<Tensor<2, Bool>>,
        past: Option<LayerKv>,
        keep: bool,
    ) -> (Tensor<3>, Option<LayerKv>) {
        let [b, t, c] = x.dims();
        let qkv = self.c_attn.forward(x); // (B, T, 3C)
        let (y, kv) = match (past, keep) {
            (None, false) => (causal_attention_qkv(qkv, self.n_head, key_pad), None),
            (past, _) => {
                let [q, mut k, mut v] = split_heads(qkv, self.n_head); // (B, nh, T, hs)
                let t_past = match past {
                    Some(p) => {
                        let tp = p.k.dims()[2];
                        k = Tensor::cat(vec![p.k, k], 2); // (B, nh, T_past + T, hs)
                        v = Tensor::cat(vec![p.v, v], 2);
                        tp
                    }
                    None => 0,
                };
                let y = causal_attention(q, k.clone(), v.clone(), key_pad, t_past);
                (y, Some(LayerKv { k, v }))
            }
        }; // y: (B, nh, T, hs)
        let y = y.swap_dims(1, 2).reshape([b, t, c]);
        (self.c_proj.forward(y), kv)
    }
}

impl CausalSelfAttention {
    /// Attention output at ONE query per row, `index` (the reward model reads only each
    /// sequence's last token, so the last block need not attend from the others): keys and values
    /// from every position, the query from the gathered position only, `key_pad` masking the keys
    /// after it.
    /// # Shapes
    /// - x: (B, T, C); index: (B, 1, C) the query position of each row, repeated over C
    /// - key_pad: (B, T), true at keys the query must not see
    /// - returns (B, 1, C)
    pub fn forward_at(
        &self,
        x: Tensor<3>,
        index: Tensor<3, Int>,
        key_pad: Tensor<2, Bool>,
    ) -> Tensor<3> {
        let [b, t, c] = x.dims();
        let nh = self.n_head;
        let hs = c / nh;
        let w = self.c_attn.weight.val(); // (C, 3C)
        let bias = self.c_attn.bias.as_ref().map(|p| p.val()); // (3C)

        // the columns [from, from + width) of c_attn: (B, T', C) → (B, T', width)
        let project = |inp: Tensor<3>, from: usize, width: usize| {
            let rows = inp.dims()[1];
            let mut y = inp
                .reshape([b * rows, c])
                .matmul(w.clone().narrow(1, from, width));
            if let Some(bias) = &bias {
                y = y + bias.clone().narrow(0, from, width).reshape([1, width]);
            }
            y.reshape([b, rows, width])
        };
        let heads = |y: Tensor<3>, rows: usize| y.reshape([b, rows, nh, hs]).swap_dims(1, 2);
        let q = heads(project(x.clone().gather(1, index), 0, c), 1); // (B, nh, 1, hs)
        let kv = project(x, c, 2 * c); // (B, T, 2C)
        let k = heads(kv.clone().narrow(2, 0, c), t); // (B, nh, T, hs)
        let v = heads(kv.narrow(2, c, c), t);
        // the query sits at "position T − 1" for the causal mask, so only key_pad limits it
        let y = causal_attention(q, k, v, Some(key_pad), t - 1); // (B, nh, 1, hs)
        self.c_proj.forward(y.swap_dims(1, 2).reshape([b, 1, c]))
    }
}
