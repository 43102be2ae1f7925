//! The trunk of a [`Lm`] as separate steps — embed, one block at a time, the final norm — for a
//! backward that keeps each block's input instead of its activations and recomputes the block
//! when its gradient is due (`train::recompute`). Composed, the steps compute exactly what
//! [`Lm::hidden`] computes for unpadded rows starting at position 0.

use super::rope::Rotary;
use super::Lm;
use burn::prelude::*;

impl Lm {
    /// Number of decoder blocks.
    pub fn n_blocks(&self) -> usize {
        match self {
            Lm::Gpt2(m) => m.h.len(),
            Lm::Llama(m) => m.model.layers.len(),
        }
    }

    /// Whether any dropout acts in training (the model's or an adapter's).
    pub fn has_dropout(&self) -> bool {
        let trunk = match self {
            Lm::Gpt2(m) => m.drop.prob > 0.0 || m.h.iter().any(|b| b.drop.prob > 0.0),
            Lm::Llama(m) => {
                m.model.drop.prob > 0.0 || m.model.layers.iter().any(|b| b.drop.prob > 0.0)
            }
        };
        trunk || self.lora_drops()
    }

    /// What the first block reads: the embeddings (dropout applied).
    /// (B, T) ids and positions → (B, T, C)
    pub fn embed(&self, idx: Tensor<2, Int>, pos: Tensor<2, Int>) -> Tensor<3> {
        match self {
            Lm::Gpt2(m) => m.embed(idx, pos),
            Lm::Llama(m) => m.embed(idx),
        }
    }

    /// Block `i` without cache or padding keys (right-padded training rows).
    /// x (B, T, C), pos (B, T) → (B, T, C)
    pub fn block(&self, i: usize, x: Tensor<3>, pos: Tensor<2, Int>) -> Tensor<3> {
        match self {
            Lm::Gpt2(m) => m.h[i].forward(x, None, None, false).0,
            Lm::Llama(m) => {
                let rot = Rotary::new(pos, &m.inv_freq);
                m.model.layers[i].forward(x, &rot, None, None).0
            }
        }
    }

    /// The norm after the last block. (B, T, C) → (B, T, C)
    pub fn final_norm(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            Lm::Gpt2(m) => m.ln_f.forward(x),
            Lm::Llama(m) => m.model.norm.forward(x),
        }
    }
}
