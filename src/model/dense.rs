//! The linear layer of every decoder, `y = x·W + b`, which may carry a LoRA adapter (Hu et al.
//! 2021, as PEFT's `lora.Linear`): `y = x·W + b + (α/r)·(drop(x)·A)·B`. A fresh adapter's A is
//! drawn as PEFT draws it (Kaiming-uniform, a = √5: U(−1/√C_in, 1/√C_in)) and its B is zero, so a
//! model with fresh adapters computes exactly what it computed without them. The tensors keep the
//! names of the layer they replace (`weight`, `bias`; the adapter's `lora.lora_a`,
//! `lora.lora_b`), so a checkpoint without adapters loads as before.

use super::dropout::Dropout;
use super::init::Init;
use crate::kernels::linear::linear_parts;
use burn::module::{Module, Param};
use burn::prelude::*;

/// A linear layer, weight `[in, out]` (burn's layout, the transpose of torch's).
#[derive(Module, Debug)]
pub struct Dense {
    /// (C_in, C_out)
    pub weight: Param<Tensor<2>>,
    /// (C_out)
    pub bias: Option<Param<Tensor<1>>>,
    /// The low-rank update trained in place of the weight (None: the plain layer).
    pub lora: Option<Lora>,
}

/// A rank-r update `(α/r)·A·B` of a layer's weight.
#[derive(Module, Debug)]
pub struct Lora {
    /// (C_in, r): PEFT's `lora_A.weight` transposed
    pub lora_a: Param<Tensor<2>>,
    /// (r, C_out): PEFT's `lora_B.weight` transposed
    pub lora_b: Param<Tensor<2>>,
    /// Dropout on the adapter's input (PEFT's `lora_dropout`).
    pub drop: Dropout,
    /// α / r.
    #[module(skip)]
    pub scale: f32,
}

impl Dense {
    /// A layer `[d_in, d_out]` with weights from `init` (N(0, std)) and a zero bias if `bias`.
    pub fn new(
        init: &mut Init,
        (d_in, d_out): (usize, usize),
        std: f64,
        bias: bool,
        dev: &Device,
    ) -> Self {
        Self {
            weight: Param::from_tensor(init.normal([d_in, d_out], std, dev)),
            bias: bias.then(|| Param::from_tensor(Tensor::zeros([d_out], dev))),
            lora: None,
        }
    }

    /// # Shapes
    /// x: (..., C_in) → (..., C_out)
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match &self.lora {
            None => linear_parts(&self.weight, self.bias.as_ref(), x),
            Some(l) => linear_parts(&self.weight, self.bias.as_ref(), x.clone()) + l.forward(x),
        }
    }

    /// (C_in, C_out)
    pub fn dims(&self) -> [usize; 2] {
        self.weight.dims()
    }

    /// Folds the adapter into the weight, `W + (α/r)·A·B`, and drops it: the layer computes
    /// what it computed with the adapter (to rounding), as a plain layer.
    pub fn merge(&mut self) {
        if let Some(l) = self.lora.take() {
            let delta = l.lora_a.val().matmul(l.lora_b.val()).mul_scalar(l.scale);
            self.weight = self.weight.clone().map(|w| w + delta);
        }
    }
}

impl Lora {
    /// A fresh adapter of rank `r` for a `[d_in, d_out]` layer: A uniform in ±1/√d_in from
    /// `init`, B zero; `scale` = α / r.
    pub fn new(
        init: &mut Init,
        (d_in, d_out): (usize, usize),
        (rank, alpha): (usize, f64),
        dropout: f64,
        dev: &Device,
    ) -> Self {
        let bound = 1.0 / (d_in as f64).sqrt();
        Self {
            lora_a: Param::from_tensor(init.uniform([d_in, rank], bound, dev)),
            lora_b: Param::from_tensor(Tensor::zeros([rank, d_out], dev)),
            drop: Dropout::new(dropout),
            scale: (alpha / rank as f64) as f32,
        }
    }

    /// The rank r.
    pub fn rank(&self) -> usize {
        self.lora_a.dims()[1]
    }

    /// `(α/r)·(drop(x)·A)·B`
    /// # Shapes
    /// x: (..., C_in) → (..., C_out)
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let x = self.drop.forward(x);
        let h = burn::tensor::module::linear(x, self.lora_a.val(), None); // (..., r)
        burn::tensor::module::linear(h, self.lora_b.val(), None).mul_scalar(self.scale)
    }
}
