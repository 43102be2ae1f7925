//! LoRA on a whole decoder: adapters attached to the chosen linear layers of every block with
//! the rest frozen, taken off (the base model, sharing its weights), or folded into the weights.
//! The layers are visited in a fixed order (blocks in order; q, k, v, o, gate, up, down within a
//! block), which is also the order fresh adapters are drawn in.

use super::dense::{Dense, Lora};
use super::gpt::Gpt;
use super::init::{Init, InitRng};
use super::llama::Llama;
use super::lm::Lm;
use crate::config::lora::{LoraConfig, LoraTarget};
use burn::module::Module;
use burn::prelude::*;

use LoraTarget::{Down, Gate, Up, K, O, Q, V};

/// A linear layer LoRA may adapt: its block, its path in the block (Hugging Face's names, as
/// in our checkpoints: `attn.c_attn`, `self_attn.q_proj`), the targets that select it, the
/// layer. PEFT's names are derived from the first two (`hf::peft`).
pub struct Site<'a> {
    pub block: usize,
    pub layer: &'static str,
    pub serves: &'static [LoraTarget],
    pub dense: &'a mut Dense,
}

/// The sites of one block, in the walk's order.
fn push_block<'a, const N: usize>(
    out: &mut Vec<Site<'a>>,
    block: usize,
    layers: [(&'static str, &'static [LoraTarget], &'a mut Dense); N],
) {
    for (layer, serves, dense) in layers {
        out.push(Site {
            block,
            layer,
            serves,
            dense,
        });
    }
}

impl Gpt {
    /// The blocks' linear layers: c_attn serves q, k and v (one fused projection).
    fn sites(&mut self) -> Vec<Site<'_>> {
        let mut out = Vec::new();
        for (i, b) in self.h.iter_mut().enumerate() {
            let (a, m) = (&mut b.attn, &mut b.mlp);
            push_block(
                &mut out,
                i,
                [
                    ("attn.c_attn", &[Q, K, V], &mut a.c_attn),
                    ("attn.c_proj", &[O], &mut a.c_proj),
                    ("mlp.c_fc", &[Up], &mut m.c_fc),
                    ("mlp.c_proj", &[Down], &mut m.c_proj),
                ],
            );
        }
        out
    }
}

impl Llama {
    fn sites(&mut self) -> Vec<Site<'_>> {
        let mut out = Vec::new();
        for (i, b) in self.model.layers.iter_mut().enumerate() {
            let (a, m) = (&mut b.self_attn, &mut b.mlp);
            push_block(
                &mut out,
                i,
                [
                    ("self_attn.q_proj", &[Q], &mut a.q_proj),
                    ("self_attn.k_proj", &[K], &mut a.k_proj),
                    ("self_attn.v_proj", &[V], &mut a.v_proj),
                    ("self_attn.o_proj", &[O], &mut a.o_proj),
                    ("mlp.gate_proj", &[Gate], &mut m.gate_proj),
                    ("mlp.up_proj", &[Up], &mut m.up_proj),
                    ("mlp.down_proj", &[Down], &mut m.down_proj),
                ],
            );
        }
        out
    }
}

impl Lm {
    /// Every linear layer LoRA may adapt, blocks in order; within a block q, k, v, o, gate, up,
    /// down (the order fresh adapters are drawn in).
    pub fn sites(&mut self) -> Vec<Site<'_>> {
        match self {
            Lm::Gpt2(m) => m.sites(),
            Lm::Llama(m) => m.sites(),
        }
    }

    /// The model with every weight frozen and a fresh adapter (A drawn from `rng`, B zero) on
    /// each layer `cfg` targets: it computes what it computed before, and only the adapters
    /// train.
    pub fn with_lora(self, cfg: &LoraConfig, rng: &mut InitRng, device: &Device) -> Self {
        self.attach(cfg, &mut Init::Random(rng), device)
    }

    /// The frozen model with zero adapters of `cfg`'s shape, for a checkpoint's adapters to
    /// replace.
    pub fn with_lora_shell(self, cfg: &LoraConfig, device: &Device) -> Self {
        self.attach(cfg, &mut Init::Zeros, device)
    }

    fn attach(self, cfg: &LoraConfig, init: &mut Init, device: &Device) -> Self {
        let mut m = self.no_grad();
        for Site { serves, dense, .. } in m.sites() {
            if cfg.adapts(serves) {
                let [d_in, d_out] = dense.dims();
                dense.lora = Some(Lora::new(
                    init,
                    (d_in, d_out),
                    (cfg.rank, cfg.alpha),
                    cfg.dropout,
                    device,
                ));
            }
        }
        m
    }

    /// Whether any layer carries an adapter.
    pub fn has_lora(&self) -> bool {
        let mut m = self.clone();
        m.sites().iter().any(|s| s.dense.lora.is_some())
    }

    /// Whether any adapter drops its input while training.
    pub fn lora_drops(&self) -> bool {
        let mut m = self.clone();
        m.sites()
            .iter()
            .any(|s| s.dense.lora.as_ref().is_some_and(|l| l.drop.prob > 0.0))
    }

    /// The base model: the same weights (shared, not copied) with every adapter taken off.
    pub fn without_lora(&self) -> Self {
        let mut m = self.clone();
        for s in m.sites() {
            s.dense.lora = None;
        }
        m
    }

    /// The adapters folded into the weights (`W + (α/r)·A·B`): a plain model computing what
    /// the adapted one computed, to rounding.
    pub fn merged(mut self) -> Self {
        for s in self.sites() {
            s.dense.merge();
        }
        self
    }
}
