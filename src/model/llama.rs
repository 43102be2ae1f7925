//! The Llama family's decoder (SmolLM2, Qwen2/2.5, Llama 3.x): token embeddings, pre-RMSNorm
//! blocks of grouped-query attention with rotary positions and a SwiGLU MLP, a final RMSNorm,
//! and an unembedding tied to the embeddings or its own. Field names are Hugging Face's
//! `LlamaForCausalLM` (`model.embed_tokens`, `model.layers.{i}.self_attn.q_proj`,
//! `model.layers.{i}.mlp.gate_proj`, `model.norm`, `lm_head`), so checkpoints name tensors as
//! `transformers` does. Linear weights are burn's `[in, out]`, the transpose of torch's.

use super::attention::LayerKv;
use super::dense::Dense;
use super::dropout::Dropout;
use super::gpt::{positions, KvCache};
use super::init::Init;
use super::rms_norm::RmsNorm;
use super::rope::Rotary;
use crate::config::{LlamaConfig, ModelConfig};
use crate::kernels::attention::causal_attention;
use crate::util::tensors::ints;
use burn::module::{Module, Param};
use burn::nn::Embedding;
use burn::prelude::*;
use burn::tensor::activation::silu;

/// Grouped-query self-attention: `n_head` query heads share `n_kv_head` key/value heads.
#[derive(Module, Debug)]
pub struct LlamaAttention {
    /// (C, nh·hs)
    pub q_proj: Dense,
    /// (C, nkv·hs)
    pub k_proj: Dense,
    /// (C, nkv·hs)
    pub v_proj: Dense,
    /// (nh·hs, C)
    pub o_proj: Dense,
    pub n_head: usize,
    pub n_kv_head: usize,
}

/// SwiGLU: `down(silu(gate(x)) · up(x))`.
#[derive(Module, Debug)]
pub struct LlamaMlp {
    pub gate_proj: Dense,
    pub up_proj: Dense,
    pub down_proj: Dense,
}

#[derive(Module, Debug)]
pub struct LlamaBlock {
    pub input_layernorm: RmsNorm,
    pub self_attn: LlamaAttention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: LlamaMlp,
    pub drop: Dropout,
}

/// The trunk (`LlamaModel`).
#[derive(Module, Debug)]
pub struct LlamaModel {
    /// (V, C)
    pub embed_tokens: Embedding,
    pub layers: Vec<LlamaBlock>,
    pub norm: RmsNorm,
    pub drop: Dropout,
}

/// The decoder with its unembedding (`LlamaForCausalLM`).
#[derive(Module, Debug)]
pub struct Llama {
    pub model: LlamaModel,
    /// The untied unembedding, weight (C, V); None: tied to `embed_tokens`.
    pub lm_head: Option<Dense>,
    /// Context length (`max_position_embeddings`).
    #[module(skip)]
    pub n_ctx: usize,
    /// The rotary inverse frequencies of one head (hs/2).
    #[module(skip)]
    pub inv_freq: Vec<f32>,
}

fn dense(init: &mut Init, d_in: usize, d_out: usize, bias: bool, dev: &Device) -> Dense {
    Dense::new(init, (d_in, d_out), 0.02, bias, dev)
}

impl Llama {
    /// A model of `cfg`'s shape: weights N(0, 0.02) (`initializer_range`) or zeros, norms 1.
    /// The draw order (blocks in order: q, k, v, o, gate, up, down; then the embeddings, then an
    /// untied head) is part of what a seed means.
    pub fn build(cfg: &ModelConfig, f: &LlamaConfig, init: &mut Init, dev: &Device) -> Self {
        let c = cfg.n_embd;
        let hs = cfg.head_size();
        let kv = f.n_kv_head * hs;
        let eps = cfg.layer_norm_epsilon;
        let bias = f.attention_bias;
        let layers = (0..cfg.n_layer)
            .map(|_| LlamaBlock {
                input_layernorm: RmsNorm::new(c, eps, dev),
                self_attn: LlamaAttention {
                    q_proj: dense(init, c, c, bias, dev),
                    k_proj: dense(init, c, kv, bias, dev),
                    v_proj: dense(init, c, kv, bias, dev),
                    o_proj: dense(init, c, c, false, dev),
                    n_head: cfg.n_head,
                    n_kv_head: f.n_kv_head,
                },
                post_attention_layernorm: RmsNorm::new(c, eps, dev),
                mlp: LlamaMlp {
                    gate_proj: dense(init, c, f.intermediate_size, false, dev),
                    up_proj: dense(init, c, f.intermediate_size, false, dev),
                    down_proj: dense(init, f.intermediate_size, c, false, dev),
                },
                drop: Dropout::new(cfg.dropout),
            })
            .collect();
        let embed_tokens = Embedding {
            weight: Param::from_tensor(init.normal([cfg.vocab_size, c], 0.02, dev)),
        };
        let lm_head = (!f.tie_word_embeddings).then(|| dense(init, c, cfg.vocab_size, false, dev));
        Self {
            model: LlamaModel {
                embed_tokens,
                layers,
                norm: RmsNorm::new(c, eps, dev),
                drop: Dropout::new(cfg.dropout),
            },
            lm_head,
            n_ctx: cfg.n_ctx,
            inv_freq: f.inv_freq(hs),
        }
    }

    /// The same model with every dropout set to `prob`.
    pub fn with_dropout(mut self, prob: f64) -> Self {
        self.model.drop.prob = prob;
        for b in self.model.layers.iter_mut() {
            b.drop.prob = prob;
        }
        self
    }

    pub fn vocab_size(&self) -> usize {
        self.model.embed_tokens.weight.dims()[0]
    }

    pub fn n_embd(&self) -> usize {
        self.model.embed_tokens.weight.dims()[1]
    }

    /// What the first block reads: the token embeddings, dropout applied. (B, T) → (B, T, C)
    pub fn embed(&self, idx: Tensor<2, Int>) -> Tensor<3> {
        self.model
            .drop
            .forward(self.model.embed_tokens.forward(idx))
    }

    /// Hidden states after the final norm; the cache it returns is empty unless `keep`.
    /// # Shapes
    /// - idx, pos: (B, T) token ids and absolute positions (the rotation's angles)
    /// - key_pad: (B, T_past + T), true at padding keys
    /// - returns (B, T, C) and the cache, keys rotated: (B, nkv, T_past + T, hs) per layer
    pub fn run_blocks(
        &self,
        idx: Tensor<2, Int>,
        pos: Tensor<2, Int>,
        key_pad: Option<Tensor<2, Bool>>,
        cache: Option<KvCache>,
        keep: bool,
    ) -> (Tensor<3>, KvCache) {
        let rot = Rotary::new(pos, &self.inv_freq);
        let mut x = self.embed(idx); // (B, T, C)
        let mut past = cache.map(|c| c.layers.into_iter().map(Some).collect::<Vec<_>>());
        let mut layers = Vec::with_capacity(self.model.layers.len());
        for (i, block) in self.model.layers.iter().enumerate() {
            let p = past.as_mut().and_then(|v| v[i].take());
            let (y, kv) = block.forward(x, &rot, key_pad.clone(), p);
            x = y;
            if keep {
                layers.push(kv);
            }
        }
        (self.model.norm.forward(x), KvCache { layers })
    }

    /// The hidden state at each row's last real token (the reward model's read-out).
    /// # Shapes
    /// - idx: (B, T) token ids from position 0, right-padded
    /// - lens: real length of each row (clamped to 1..=T)
    /// - returns (B, C)
    pub fn hidden_last(&self, idx: Tensor<2, Int>, lens: &[usize]) -> Tensor<2> {
        let [b, t] = idx.dims();
        let device = idx.device();
        let c = self.n_embd();
        let last: Vec<i64> = lens.iter().map(|&l| (l.clamp(1, t) - 1) as i64).collect();
        // (B, 1, C)
        let index = ints(&last, [b], &device)
            .reshape([b, 1, 1])
            .expand([b, 1, c]);
        // right padding: a row's padding keys come after its last query, so the causal mask
        // already hides them from it
        let pos = positions(b, t, 0, &device);
        let h = self.run_blocks(idx, pos, None, None, false).0; // (B, T, C)
        h.gather(1, index).reshape([b, c])
    }

    /// The unembedding. (B, T, C) → (B, T, V)
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => {
                let [b, t, c] = hidden.dims();
                let w = self.model.embed_tokens.weight.val(); // (V, C)
                let v = w.dims()[0];
                hidden
                    .reshape([b * t, c])
                    .matmul(w.transpose())
                    .reshape([b, t, v])
            }
        }
    }
}

impl LlamaBlock {
    /// The block: attention over this layer's cache `past` and the new tokens, then the MLP,
    /// each with its residual. Returns the output and this layer's keys (rotated) and values.
    /// x (B, T, C), key_pad (B, T_past + T) → (B, T, C)
    pub fn forward(
        &self,
        x: Tensor<3>,
        rot: &Rotary,
        key_pad: Option<Tensor<2, Bool>>,
        past: Option<LayerKv>,
    ) -> (Tensor<3>, LayerKv) {
        let h = self.input_layernorm.forward(x.clone());
        let (a, kv) = self.self_attn.forward(h, rot, key_pad, past);
        let x = x + self.drop.forward(a);
        let m = self
            .mlp
            .forward(self.post_attention_layernorm.forward(x.clone()));
        (x + self.drop.forward(m), kv)
    }
}

impl LlamaMlp {
    /// (B, T, C) → (B, T, C)
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let g = silu(self.gate_proj.forward(x.clone())); // (B, T, I)
        self.down_proj.forward(g * self.up_proj.forward(x))
    }
}

impl LlamaAttention {
    /// # Shapes
    /// - x: (B, T, C), the new tokens only when a cache is given
    /// - key_pad: (B, T_past + T), true at padding keys
    /// - returns (B, T, C) and this layer's keys (rotated) and values (B, nkv, T_past + T, hs)
    pub fn forward(
        &self,
        x: Tensor<3>,
        rot: &Rotary,
        key_pad: Option<Tensor<2, Bool>>,
        past: Option<LayerKv>,
    ) -> (Tensor<3>, LayerKv) {
        let [b, t, c] = x.dims();
        let (nh, nkv) = (self.n_head, self.n_kv_head);
        let hs = c / nh;
        let heads = |y: Tensor<3>, n: usize| y.reshape([b, t, n, hs]).swap_dims(1, 2);
        let q = rot.apply(heads(self.q_proj.forward(x.clone()), nh)); // (B, nh, T, hs)
        let mut k = rot.apply(heads(self.k_proj.forward(x.clone()), nkv)); // (B, nkv, T, hs)
        let mut v = heads(self.v_proj.forward(x), nkv);
        let t_past = match past {
            Some(p) => {
                let tp = p.k.dims()[2];
                k = Tensor::cat(vec![p.k, k], 2); // (B, nkv, T_past + T, hs)
                v = Tensor::cat(vec![p.v, v], 2);
                tp
            }
            None => 0,
        };
        // query head h reads key/value head h / (nh / nkv), in place (grouped-query attention)
        let y = causal_attention(q, k.clone(), v.clone(), key_pad, t_past); // (B, nh, T, hs)
        let y = y.swap_dims(1, 2).reshape([b, t, c]);
        (self.o_proj.forward(y), LayerKv { k, v })
    }
}
