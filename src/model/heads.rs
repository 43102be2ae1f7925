//! The reward model: the GPT-2 trunk without its unembedding, plus a scalar head read at the
//! last real (non-padding) token of `prompt + response`. Tensor names follow Hugging Face's
//! `GPT2ForSequenceClassification`: `transformer.*` for the trunk, `score.weight` (C, 1) for the
//! head. The normalisation bias (InstructGPT shifts rewards so SFT samples score 0 on average) is
//! not a weight: it lives in the checkpoint's `config.json` and is added when scoring.

use super::gpt::{positions, Gpt};
use crate::config::ModelConfig;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::Distribution;

#[derive(Module, Debug)]
pub struct RewardModel {
    pub transformer: Gpt,
    /// Scalar head, weight (C, 1), no bias.
    pub score: Linear,
}

impl RewardModel {
    /// A reward model on a given trunk with a freshly initialised head (N(0, 1/sqrt(C+1)) as
    /// DeepSpeed-Chat / InstructGPT's small-init head).
    pub fn from_trunk(transformer: Gpt, device: &Device) -> Self {
        let c = transformer.wte.weight.dims()[1];
        let std = 1.0 / ((c + 1) as f64).sqrt();
        let score = Linear {
            weight: Param::from_tensor(Tensor::random(
                [c, 1],
                Distribution::Normal(0.0, std),
                device,
            )),
            bias: None,
        };
        Self { transformer, score }
    }

    /// A value model on a policy's trunk: the head starts at zero, so every initial value is 0
    /// and the start does not depend on any random state (a resumed run matches a straight one).
    pub fn value_from_trunk(transformer: Gpt, device: &Device) -> Self {
        let c = transformer.wte.weight.dims()[1];
        let score = Linear {
            weight: Param::from_tensor(Tensor::zeros([c, 1], device)),
            bias: None,
        };
        Self { transformer, score }
    }

    /// The same model with every dropout of the trunk set to `prob`.
    pub fn with_dropout(self, prob: f64) -> Self {
        Self {
            transformer: self.transformer.with_dropout(prob),
            score: self.score,
        }
    }

    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        Self::from_trunk(Gpt::new(cfg, device), device)
    }

    /// Rewards of right-padded sequences.
    /// # Shapes
    /// - idx: (B, T) token ids, padding after each sequence's end
    /// - lens: real length of each row (≥ 1, ≤ T)
    /// - returns (B,)
    pub fn forward(&self, idx: Tensor<2, Int>, lens: &[usize]) -> Tensor<1> {
        let b = idx.dims()[0];
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
        let (h, _) = self
            .transformer
            .forward_hidden(idx, positions(b, t, 0, &device), None, None); // (B, T, C)
        let c = h.dims()[2];
        self.score.forward(h.reshape([b * t, c])).reshape([b, t])
    }
}
