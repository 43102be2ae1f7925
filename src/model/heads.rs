//! The reward model: the GPT-2 trunk without its unembedding, plus a scalar head read at the
//! last real (non-padding) token of `prompt + response`. Tensor names follow Hugging Face's
//! `GPT2ForSequenceClassification`: `transformer.*` for the trunk, `score.weight` (C, 1) for the
//! head. The normalisation bias (InstructGPT shifts rewards so SFT samples score 0 on average) is
//! not a weight: it lives in the checkpoint's `config.json` and is added when scoring.

use super::gpt::positions;
use super::init::{Init, InitRng};
use super::lm::Lm;
use crate::config::ModelConfig;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Module, Debug)]
pub struct RewardModel {
    pub transformer: Lm,
    /// Scalar head, weight (C, 1), no bias.
    pub score: Linear,
    /// Rows scored by [`RewardModel::forward`], shared with every clone and fork.
    #[module(skip)]
    pub forwarded: ForwardCount,
}

/// Rows a reward model has scored, counted where they are scored: what a training step cost
/// is read from here rather than inferred from the batch it was given. Clones and forks (the
/// micro-batches' copies) share one count.
#[derive(Clone, Debug, Default)]
pub struct ForwardCount(Arc<AtomicUsize>);

impl ForwardCount {
    /// Rows scored so far.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, rows: usize) {
        self.0.fetch_add(rows, Ordering::Relaxed);
    }
}

impl RewardModel {
    /// A reward model on a given trunk with a freshly initialised head (N(0, 1/sqrt(C+1)) as
    /// DeepSpeed-Chat / InstructGPT's small-init head), drawn from `rng` on the host.
    pub fn from_trunk(transformer: Lm, rng: &mut InitRng, device: &Device) -> Self {
        Self::with_head(transformer, &mut Init::Random(rng), device)
    }

    /// The trunk with a zero head: PPO's value model starts so (every initial value is the
    /// reward bias alone, whatever the random state), and import fills the head in from a file.
    pub fn with_zero_head(transformer: Lm, device: &Device) -> Self {
        Self::with_head(transformer, &mut Init::Zeros, device)
    }

    fn with_head(transformer: Lm, init: &mut Init, device: &Device) -> Self {
        let c = transformer.n_embd();
        let std = 1.0 / ((c + 1) as f64).sqrt();
        let score = Linear {
            weight: Param::from_tensor(init.normal([c, 1], std, device)),
            bias: None,
        };
        Self {
            transformer,
            score,
            forwarded: ForwardCount::default(),
        }
    }

    /// The same model with every dropout of the trunk set to `prob`.
    pub fn with_dropout(self, prob: f64) -> Self {
        Self {
            transformer: self.transformer.with_dropout(prob),
            score: self.score,
            forwarded: self.forwarded,
        }
    }

    /// A fresh reward model: the trunk, then the head, drawn from `rng`.
    pub fn new(cfg: &ModelConfig, rng: &mut InitRng, device: &Device) -> Self {
        let trunk = Lm::new(cfg, rng, device);
        Self::from_trunk(trunk, rng, device)
    }

    /// A reward model of this shape with zero weights, for a checkpoint's weights to replace.
    pub fn zeroed(cfg: &ModelConfig, device: &Device) -> Self {
        Self::with_zero_head(Lm::zeroed(cfg, device), device)
    }

    /// Rewards of right-padded sequences.
    /// # Shapes
    /// - idx: (B, T) token ids, padding after each sequence's end
    /// - lens: real length of each row (≥ 1, ≤ T)
    /// - returns (B,)
    pub fn forward(&self, idx: Tensor<2, Int>, lens: &[usize]) -> Tensor<1> {
        let b = idx.dims()[0];
        self.forwarded.add(b);
        let h_last = self.transformer.forward_hidden_last(idx, lens); // (B, C)
        self.score.forward(h_last).reshape([b])
    }

    /// The head at every position: PPO's value model, `V(s_t)` read at the position of the
    /// last token of state `s_t`.
    /// # Shapes
    /// - idx: (B, T) token ids from position 0, right-padded
    /// - returns (B, T)
    pub fn values(&self, idx: Tensor<2, Int>) -> Tensor<2> {
        let [b, t] = idx.dims();
        let device = idx.device();
        let h = self
            .transformer
            .hidden(idx, positions(b, t, 0, &device), None); // (B, T, C)
        let c = h.dims()[2];
        self.score.forward(h.reshape([b * t, c])).reshape([b, t])
    }
}
