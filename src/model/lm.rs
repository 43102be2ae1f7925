//! A language model of any supported family: what every stage trains, samples and scores. The
//! variants keep their own Hugging Face parameter names (the enum adds no name to a tensor's
//! path: checkpoints are saved and loaded with enum variants skipped), and every method answers
//! the same question with the same shapes whatever the family.

use super::gpt::{positions, Gpt, KvCache};
use super::init::{Init, InitRng};
use super::llama::Llama;
use crate::config::{Family, ModelConfig};
use burn::module::{Module, Param};
use burn::prelude::*;

// one `Lm` per model in a run, never in a collection: boxing the larger variant saves nothing
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Lm {
    Gpt2(Gpt),
    Llama(Llama),
}

impl From<Gpt> for Lm {
    fn from(g: Gpt) -> Self {
        Lm::Gpt2(g)
    }
}

impl Lm {
    /// A randomly initialised model of `cfg`'s family and shape, drawn from `rng` on the host
    /// (the same seed gives the same weights on every device). `cfg.vocab_size` must be set.
    pub fn new(cfg: &ModelConfig, rng: &mut InitRng, device: &Device) -> Self {
        Self::build(cfg, &mut Init::Random(rng), device)
    }

    /// A model of this shape with zero weights, for a checkpoint's weights to replace.
    pub fn zeroed(cfg: &ModelConfig, device: &Device) -> Self {
        Self::build(cfg, &mut Init::Zeros, device)
    }

    fn build(cfg: &ModelConfig, init: &mut Init, device: &Device) -> Self {
        match &cfg.family {
            Family::Gpt2 => Lm::Gpt2(Gpt::build(cfg, init, device)),
            Family::Llama(f) => Lm::Llama(Llama::build(cfg, f, init, device)),
        }
    }

    /// The same model with every dropout set to `prob`.
    pub fn with_dropout(self, prob: f64) -> Self {
        match self {
            Lm::Gpt2(m) => Lm::Gpt2(m.with_dropout(prob)),
            Lm::Llama(m) => Lm::Llama(m.with_dropout(prob)),
        }
    }

    /// The GPT-2 inside, if it is one.
    pub fn as_gpt2(&self) -> Option<&Gpt> {
        match self {
            Lm::Gpt2(m) => Some(m),
            Lm::Llama(_) => None,
        }
    }

    /// The GPT-2 inside, if it is one, to change.
    pub fn as_gpt2_mut(&mut self) -> Option<&mut Gpt> {
        match self {
            Lm::Gpt2(m) => Some(m),
            Lm::Llama(_) => None,
        }
    }

    /// The longest sequence the model takes.
    pub fn n_ctx(&self) -> usize {
        match self {
            Lm::Gpt2(m) => m.n_ctx(),
            Lm::Llama(m) => m.n_ctx,
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Lm::Gpt2(m) => m.vocab_size(),
            Lm::Llama(m) => m.vocab_size(),
        }
    }

    /// Width of the hidden states.
    pub fn n_embd(&self) -> usize {
        match self {
            Lm::Gpt2(m) => m.wte.weight.dims()[1],
            Lm::Llama(m) => m.n_embd(),
        }
    }

    /// The token embedding matrix (V, C).
    pub fn token_embeddings(&self) -> &Param<Tensor<2>> {
        match self {
            Lm::Gpt2(m) => &m.wte.weight,
            Lm::Llama(m) => &m.model.embed_tokens.weight,
        }
    }

    /// Hidden states after the final norm, and the extended cache.
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
        match self {
            Lm::Gpt2(m) => m.forward_hidden(idx, pos, key_pad, cache),
            Lm::Llama(m) => m.run_blocks(idx, pos, key_pad, cache, true),
        }
    }

    /// Hidden states with no cache given or kept (training and scoring).
    /// (B, T) ids and positions, key_pad (B, T) → (B, T, C)
    pub fn hidden(
        &self,
        idx: Tensor<2, Int>,
        pos: Tensor<2, Int>,
        key_pad: Option<Tensor<2, Bool>>,
    ) -> Tensor<3> {
        match self {
            Lm::Gpt2(m) => m.hidden(idx, pos, key_pad),
            Lm::Llama(m) => m.run_blocks(idx, pos, key_pad, None, false).0,
        }
    }

    /// The hidden state at each row's last real token (the reward model's read-out).
    /// # Shapes
    /// - idx: (B, T) token ids from position 0, right-padded
    /// - lens: real length of each row (clamped to 1..=T)
    /// - returns (B, C)
    pub fn forward_hidden_last(&self, idx: Tensor<2, Int>, lens: &[usize]) -> Tensor<2> {
        match self {
            Lm::Gpt2(m) => m.forward_hidden_last(idx, lens),
            Lm::Llama(m) => m.hidden_last(idx, lens),
        }
    }

    /// The unembedding. (B, T, C) → (B, T, V)
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        match self {
            Lm::Gpt2(m) => m.logits(hidden),
            Lm::Llama(m) => m.logits(hidden),
        }
    }

    /// Logits for unpadded sequences starting at position 0. (B, T) → (B, T, V)
    pub fn forward(&self, idx: Tensor<2, Int>) -> Tensor<3> {
        let [b, t] = idx.dims();
        let pos = positions(b, t, 0, &idx.device());
        self.logits(self.hidden(idx, pos, None))
    }
}
