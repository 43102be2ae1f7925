//! The trunk of a [`Lm`] as separate steps — embed, one block at a time, the final norm — for a
//! backward that keeps each block's input instead of its activations and recomputes the block
//! when its gradient is due (`train::recompute`). Composed, the steps compute exactly what
//! [`Lm::hidden`] computes for unpadded rows starting at position 0.

use super::gpt::Gpt;
use super::llama::Llama;
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
            Lm::Gpt2(m) => m.drop.forward(m.wte.forward(idx) + m.wpe.forward(pos)),
            Lm::Llama(m) => m.model.drop.forward(m.model.embed_tokens.forward(idx)),
        }
    }

    /// Block `i` without cache or padding keys (right-padded training rows).
    /// x (B, T, C), pos (B, T) → (B, T, C)
    pub fn block(&self, i: usize, x: Tensor<3>, pos: Tensor<2, Int>) -> Tensor<3> {
        match self {
            Lm::Gpt2(m) => gpt_block(m, i, x),
            Lm::Llama(m) => llama_block(m, i, x, pos),
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

fn gpt_block(m: &Gpt, i: usize, x: Tensor<3>) -> Tensor<3> {
    let b = &m.h[i];
    let (a, _) = b.attn.forward(b.ln_1.forward(x.clone()), None, None, false);
    b.mlp_residual(x + b.drop.forward(a))
}

fn llama_block(m: &Llama, i: usize, x: Tensor<3>, pos: Tensor<2, Int>) -> Tensor<3> {
    let block = &m.model.layers[i];
    let rot = Rotary::new(pos, &m.inv_freq);
    let h = block.input_layernorm.forward(x.clone());
    let (a, _) = block.self_attn.forward(h, &rot, None, None);
    let x = x + block.drop.forward(a);
    let mlp = block
        .mlp
        .forward(block.post_attention_layernorm.forward(x.clone()));
    x + block.drop.forward(mlp)
}
