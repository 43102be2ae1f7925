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

/// A linear layer of a block and the targets that select it.
type Site<'a> = (&'static [LoraTarget], &'a mut Dense);

impl Gpt {
    /// The blocks' linear layers: c_attn serves q, k and v (one fused projection).
    fn sites(&mut self) -> Vec<Site<'_>> {
        let mut out: Vec<Site<'_>> = Vec::new();
        for b in self.h.iter_mut() {
            out.push((&[Q, K, V], &mut b.attn.c_attn));
            out.push((&[O], &mut b.attn.c_proj));
            out.push((&[Up], &mut b.mlp.c_fc));
            out.push((&[Down], &mut b.mlp.c_proj));
        }
        out
    }
}

impl Llama {
    fn sites(&mut self) -> Vec<Site<'_>> {
        let mut out: Vec<Site<'_>> = Vec::new();
        for b in self.model.layers.iter_mut() {
            let (a, m) = (&mut b.self_attn, &mut b.mlp);
            out.push((&[Q], &mut a.q_proj));
            out.push((&[K], &mut a.k_proj));
            out.push((&[V], &mut a.v_proj));
            out.push((&[O], &mut a.o_proj));
            out.push((&[Gate], &mut m.gate_proj));
            out.push((&[Up], &mut m.up_proj));
            out.push((&[Down], &mut m.down_proj));
        }
        out
    }
}

impl Lm {
    fn sites(&mut self) -> Vec<Site<'_>> {
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
        for (serves, d) in m.sites() {
            if cfg.adapts(serves) {
                let [d_in, d_out] = d.dims();
                d.lora = Some(Lora::new(
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
        m.sites().iter().any(|(_, d)| d.lora.is_some())
    }

    /// Whether any adapter drops its input while training.
    pub fn lora_drops(&self) -> bool {
        let mut m = self.clone();
        m.sites()
            .iter()
            .any(|(_, d)| d.lora.as_ref().is_some_and(|l| l.drop.prob > 0.0))
    }

    /// The base model: the same weights (shared, not copied) with every adapter taken off.
    pub fn without_lora(&self) -> Self {
        let mut m = self.clone();
        for (_, d) in m.sites() {
            d.lora = None;
        }
        m
    }

    /// The adapters folded into the weights (`W + (α/r)·A·B`): a plain model computing what
    /// the adapted one computed, to rounding.
    pub fn merged(mut self) -> Self {
        for (_, d) in self.sites() {
            d.merge();
        }
        self
    }
}
