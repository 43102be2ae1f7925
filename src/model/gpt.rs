//! GPT-2: token and position embeddings, pre-LayerNorm blocks with a GELU MLP, a final LayerNorm,
//! and an unembedding tied to `wte`. Field names are GPT-2's (`wte`, `wpe`, `h.{i}.attn.c_attn`,
//! `h.{i}.mlp.c_fc`, `ln_f`), so the safetensors file uses Hugging Face's tensor names.

use super::attention::{CausalSelfAttention, LayerKv};
use super::dense::Dense;
use super::dropout::Dropout;
use super::init::{Init, InitRng};
use super::layer_norm::LayerNorm;
use crate::config::ModelConfig;
use crate::util::tensors::{bools, ints};
use burn::module::{Module, Param};
use burn::nn::Embedding;
use burn::prelude::*;

/// GPT-2's MLP: `c_fc` (C → 4C), tanh-approximated GELU ("gelu_new"), `c_proj` (4C → C).
#[derive(Module, Debug)]
pub struct Mlp {
    pub c_fc: Dense,
    pub c_proj: Dense,
}

/// One pre-LN transformer block.
#[derive(Module, Debug)]
pub struct Block {
    pub ln_1: LayerNorm,
    pub attn: CausalSelfAttention,
    pub ln_2: LayerNorm,
    pub mlp: Mlp,
    pub drop: Dropout,
}

impl Block {
    /// The block: attention over this layer's cache `past` and the new tokens (their keys and
    /// values returned when `keep`), then the MLP, each with its residual.
    /// x (B, T, C), key_pad (B, T_past + T) → (B, T, C)
    pub fn forward(
        &self,
        x: Tensor<3>,
        key_pad: Option<Tensor<2, Bool>>,
        past: Option<LayerKv>,
        keep: bool,
    ) -> (Tensor<3>, Option<LayerKv>) {
        let (a, kv) = self
            .attn
            .forward(self.ln_1.forward(x.clone()), key_pad, past, keep);
        (self.mlp_residual(x + self.drop.forward(a)), kv)
    }

    /// The second half of the block: `x + drop(mlp(ln_2(x)))`. (B, T, C) → (B, T, C)
    fn mlp_residual(&self, x: Tensor<3>) -> Tensor<3> {
        let h = gelu_new(self.mlp.c_fc.forward(self.ln_2.forward(x.clone()))); // (B, T, 4C)
        let m = self.mlp.c_proj.forward(h);
        x + self.drop.forward(m)
    }
}

/// The decoder. `forward` returns the final hidden states; `logits` applies the tied head.
#[derive(Module, Debug)]
pub struct Gpt {
    /// Token embeddings (V, C); also the unembedding (tied, as GPT-2).
    pub wte: Embedding,
    /// Learned position embeddings (n_ctx, C).
    pub wpe: Embedding,
    pub drop: Dropout,
    pub h: Vec<Block>,
    pub ln_f: LayerNorm,
}

/// Per-layer keys and values of everything generated so far.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    pub layers: Vec<LayerKv>,
}

impl KvCache {
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.layers.first().map(|l| l.k.dims()[2]).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A linear layer initialised as GPT-2: weights N(0, std), biases 0.
fn init_linear(init: &mut Init, d_in: usize, d_out: usize, std: f64, device: &Device) -> Dense {
    Dense::new(init, (d_in, d_out), std, true, device)
}

fn embedding(init: &mut Init, n: usize, c: usize, std: f64, device: &Device) -> Embedding {
    Embedding {
        weight: Param::from_tensor(init.normal([n, c], std, device)),
    }
}

impl Gpt {
    /// Creates a randomly initialised model (GPT-2 init: N(0, 0.02), residual projections scaled
    /// by 1/sqrt(2·n_layer)) drawn from `rng` on the host: the same seed gives the same weights
    /// on every device. `cfg.vocab_size` must be set.
    pub fn new(cfg: &ModelConfig, rng: &mut InitRng, device: &Device) -> Self {
        Self::build(cfg, &mut Init::Random(rng), device)
    }

    /// A model of this shape with zero weights, for a checkpoint's weights to replace.
    pub fn zeroed(cfg: &ModelConfig, device: &Device) -> Self {
        Self::build(cfg, &mut Init::Zeros, device)
    }

    /// The draw order (blocks in order: c_attn, attn.c_proj, c_fc, mlp.c_proj; then wte, wpe) is
    /// part of what a seed means: changing it changes every model trained from a seed.
    pub(crate) fn build(cfg: &ModelConfig, init: &mut Init, device: &Device) -> Self {
        let c = cfg.n_embd;
        let proj_std = 0.02 / (2.0 * cfg.n_layer as f64).sqrt();
        let drop = || Dropout::new(cfg.dropout);
        let h = (0..cfg.n_layer)
            .map(|_| Block {
                ln_1: LayerNorm::new(c, cfg.layer_norm_epsilon, device),
                attn: CausalSelfAttention {
                    c_attn: init_linear(init, c, 3 * c, 0.02, device),
                    c_proj: init_linear(init, c, c, proj_std, device),
                    n_head: cfg.n_head,
                },
                ln_2: LayerNorm::new(c, cfg.layer_norm_epsilon, device),
                mlp: Mlp {
                    c_fc: init_linear(init, c, 4 * c, 0.02, device),
                    c_proj: init_linear(init, 4 * c, c, proj_std, device),
                },
                drop: drop(),
            })
            .collect();
        Self {
            wte: embedding(init, cfg.vocab_size, c, 0.02, device),
            wpe: embedding(init, cfg.n_ctx, c, 0.01, device),
            drop: drop(),
            h,
            ln_f: LayerNorm::new(c, cfg.layer_norm_epsilon, device),
        }
    }

    /// The same model with every dropout set to `prob` (PPO trains with dropout 0, so that the
    /// policy's log-probabilities at update time match those recorded at rollout time).
    pub fn with_dropout(mut self, prob: f64) -> Self {
        self.drop.prob = prob;
        for b in self.h.iter_mut() {
            b.drop.prob = prob;
        }
        self
    }

    /// Context length (rows of the position table).
    pub fn n_ctx(&self) -> usize {
        self.wpe.weight.dims()[0]
    }

    pub fn vocab_size(&self) -> usize {
        self.wte.weight.dims()[0]
    }

    /// Hidden states after `ln_f`.
    /// # Shapes
    /// - idx, pos: (B, T) token ids and absolute positions
    /// - key_pad: (B, T_past + T), true at padding keys (None: no padding)
    /// - returns (B, T, C) and the updated cache
    pub fn forward_hidden(
        &self,
        idx: Tensor<2, Int>,
        pos: Tensor<2, Int>,
        key_pad: Option<Tensor<2, Bool>>,
        cache: Option<KvCache>,
    ) -> (Tensor<3>, KvCache) {
        self.run_blocks(idx, pos, key_pad, cache, true)
    }

    /// Hidden states after `ln_f`, as [`Gpt::forward_hidden`] with no cache given or kept
    /// (training and scoring: attention then reads the heads in place).
    /// (B, T) ids and positions, key_pad (B, T) → (B, T, C)
    pub fn hidden(
        &self,
        idx: Tensor<2, Int>,
        pos: Tensor<2, Int>,
        key_pad: Option<Tensor<2, Bool>>,
    ) -> Tensor<3> {
        self.run_blocks(idx, pos, key_pad, None, false).0
    }

    /// What the first block reads: token plus position embeddings, dropout applied.
    /// (B, T) ids and positions → (B, T, C)
    pub fn embed(&self, idx: Tensor<2, Int>, pos: Tensor<2, Int>) -> Tensor<3> {
        self.drop
            .forward(self.wte.forward(idx) + self.wpe.forward(pos))
    }

    /// The trunk; the cache it returns is empty unless `keep`.
    fn run_blocks(
        &self,
        idx: Tensor<2, Int>,
        pos: Tensor<2, Int>,
        key_pad: Option<Tensor<2, Bool>>,
        cache: Option<KvCache>,
        keep: bool,
    ) -> (Tensor<3>, KvCache) {
        let mut x = self.embed(idx, pos); // (B, T, C)
        let mut past = cache.map(|c| c.layers.into_iter().map(Some).collect::<Vec<_>>());
        let mut layers = Vec::with_capacity(self.h.len());
        for (i, block) in self.h.iter().enumerate() {
            let p = past.as_mut().and_then(|v| v[i].take());
            let (y, kv) = block.forward(x, key_pad.clone(), p, keep);
            x = y;
            layers.extend(kv);
        }
        (self.ln_f.forward(x), KvCache { layers })
    }

    /// Hidden state after `ln_f` at each row's last real token only, as
    /// `forward_hidden(..).gather(last)` but with the last block computed at that one position
    /// (its keys and values still come from every position): the reward model needs nothing
    /// else, and this skips most of the last block's work (a quarter of the trunk at 4 layers).
    /// # Shapes
    /// - idx: (B, T) token ids from position 0, right-padded
    /// - lens: real length of each row (clamped to 1..=T)
    /// - returns (B, C)
    pub fn forward_hidden_last(&self, idx: Tensor<2, Int>, lens: &[usize]) -> Tensor<2> {
        let [b, t] = idx.dims();
        let device = idx.device();
        let c = self.wte.weight.dims()[1];
        let last: Vec<i64> = lens.iter().map(|&l| (l.clamp(1, t) - 1) as i64).collect();
        let index = ints(&last, [b], &device)
            .reshape([b, 1, 1])
            .expand([b, 1, c]); // (B, 1, C)
        let pos = positions(b, t, 0, &device);
        let mut x = self.embed(idx, pos); // (B, T, C)
        let Some((tail, body)) = self.h.split_last() else {
            return self.ln_f.forward(x.gather(1, index)).reshape([b, c]);
        };
        for block in body {
            x = block.forward(x, None, None, false).0;
        }
        // keys after each row's last token are padding (right padding): the query must not see them
        let after: Vec<bool> = last
            .iter()
            .flat_map(|&l| (0..t as i64).map(move |j| j > l))
            .collect();
        let key_pad = bools(&after, [b, t], &device);
        let a = tail
            .attn
            .forward_at(tail.ln_1.forward(x.clone()), index.clone(), key_pad); // (B, 1, C)
        let x_last = tail.mlp_residual(x.gather(1, index) + tail.drop.forward(a)); // (B, 1, C)
        self.ln_f.forward(x_last).reshape([b, c])
    }

    /// Tied unembedding. (B, T, C) → (B, T, V)
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        let [b, t, c] = hidden.dims();
        let w = self.wte.weight.val(); // (V, C)
        let v = w.dims()[0];
        hidden
            .reshape([b * t, c])
            .matmul(w.transpose())
            .reshape([b, t, v])
    }

    /// Logits for unpadded sequences starting at position 0. (B, T) → (B, T, V)
    pub fn forward(&self, idx: Tensor<2, Int>) -> Tensor<3> {
        let [b, t] = idx.dims();
        let pos = positions(b, t, 0, &idx.device());
        self.logits(self.hidden(idx, pos, None))
    }
}

/// Positions `start..start+t` for every row. → (B, T)
pub fn positions(b: usize, t: usize, start: usize, device: &Device) -> Tensor<2, Int> {
    Tensor::<1, Int>::arange(start as i64..(start + t) as i64, device)
        .reshape([1, t])
        .expand([b, t])
}

/// GPT-2's tanh GELU ("gelu_new"): the fused CPU kernel on the CPU backend, its composed
/// reference twin elsewhere (see [`crate::kernels::gelu`]).
pub fn gelu_new<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    crate::kernels::gelu::gelu_new(x)
}
