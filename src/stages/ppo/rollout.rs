//! Rollouts: the policy answers a batch of prompts (batched, KV-cached sampling), then one
//! forward pass each of the policy, the frozen reference and the value model over the
//! right-padded episodes records log π_old, log π_SFT and V_old at every action, and the reward
//! is scored. All of it runs without gradients.

use super::episode::{Episode, Grid};
use crate::model::generate::{generate_parallel, SampleConfig};
use crate::model::loss::{tempered, token_logprobs};
use crate::model::score::score_responses;
use crate::model::{Lm, RewardModel};
use crate::util::rng::Rng;
use crate::util::shards;
use crate::util::tensors::{ints, read_scalars};
use anyhow::Result;
use burn::prelude::*;

/// What scores a finished episode.
pub enum Scorer {
    /// A trained reward model read at the last token of `prompt + response + <|endoftext|>`,
    /// plus its normalisation bias.
    Model { rm: Box<RewardModel>, bias: f32 },
    /// A fixed, known reward: how many times `token` occurs in the response, times `scale`.
    /// For checking that PPO optimises what it is given (tests, `--reward-token`).
    TokenCount { token: u32, scale: f32 },
}

impl Scorer {
    /// One score per episode; sequences go through the RM `chunk` at a time.
    pub fn score(
        &self,
        eps: &[Episode],
        eot: u32,
        chunk: usize,
        device: &Device,
    ) -> Result<Vec<f32>> {
        match self {
            Scorer::TokenCount { token, scale } => Ok(eps
                .iter()
                .map(|e| e.response().iter().filter(|&&t| t == *token).count() as f32 * scale)
                .collect()),
            Scorer::Model { rm, bias } => {
                // two halves on parallel threads on the CPU backend (`util::shards`), each in
                // chunks
                shards::concat_ranges(eps.len(), 2, device, |_, half| {
                    let pairs: Vec<(&[u32], &[u32])> = eps[half]
                        .iter()
                        .map(|e| (e.prompt.as_slice(), e.response()))
                        .collect();
                    Ok(score_responses(rm, &pairs, eot, chunk, device)?
                        .into_iter()
                        .map(|x| x + bias)
                        .collect())
                })
            }
        }
    }
}

/// The inference-mode models a rollout needs.
pub struct RolloutModels<'a> {
    pub policy: &'a Lm,
    pub reference: &'a Lm,
    /// The value model and the bias added to its values (see [`super::Critic::bias`]); none
    /// under RLOO, whose episodes then carry values of 0.
    pub value: Option<(&'a RewardModel, f32)>,
}

/// Samples one response per prompt and records log-probs (of the tempered distribution the
/// responses are drawn from, `sampling.temperature` > 0) and values (when there is a value
/// model). Prompts must already fit (`len + max_new_tokens + 1 ≤ n_ctx`, see
/// `data::pairs::fit_prompt`). Forwards run `chunk` episodes at a time.
pub fn rollout(
    m: &RolloutModels<'_>,
    prompts: &[Vec<u32>],
    sampling: &SampleConfig,
    eot: u32,
    chunk: usize,
    rng: &mut Rng,
    device: &Device,
) -> Result<Vec<Episode>> {
    let responses = generate_parallel(m.policy, prompts, sampling, eot, rng, device)?;
    let mut eps: Vec<Episode> = prompts
        .iter()
        .zip(responses)
        .map(|(p, mut r)| {
            // fewer tokens than the limit means the policy sampled <|endoftext|>
            let ended = r.len() < sampling.max_new_tokens;
            if ended {
                r.push(eot);
            }
            Episode {
                prompt: p.clone(),
                actions: r,
                ended,
                ..Default::default()
            }
        })
        .collect();
    for part in eps.chunks_mut(chunk.max(1)) {
        let refs: Vec<&Episode> = part.iter().collect();
        let g = Grid::new(&refs, eot);
        let n = g.b * g.t;
        let x = ints(&g.x, [g.b, g.t], device);
        let y = ints(&g.y, [g.b, g.t], device);
        // independent forwards (policy, reference, value model if any): parallel threads on
        // the CPU backend (`util::shards`)
        let n_outs = if m.value.is_some() { 3 } else { 2 };
        let outs = shards::run(n_outs, device, |i| {
            let (x, y) = (x.clone(), y.clone());
            // log-probs of the distribution the actions were sampled from (softmax(l/T)),
            // for the policy and the reference alike, so the KL compares like with like
            let temp = sampling.temperature;
            let t = match (i, m.value) {
                (0, _) => token_logprobs(tempered(m.policy.forward(x), temp), y),
                (1, _) => token_logprobs(tempered(m.reference.forward(x), temp), y),
                (_, Some((value, bias))) => value.values(x).add_scalar(bias),
                (_, None) => anyhow::bail!("rollout: a value pass without a value model"),
            };
            Ok(t.reshape([n]))
        })?;
        // read back in one transfer
        let host = read_scalars(outs)?;
        let per_row = |i: usize| g.gather(&host[i * n..(i + 1) * n]);
        let (lp, lr) = (per_row(0), per_row(1));
        let v = match m.value {
            Some(_) => per_row(2),
            None => g.lens.iter().map(|&l| vec![0.0; l]).collect(),
        };
        for (((e, lp), lr), v) in part.iter_mut().zip(lp).zip(lr).zip(v) {
            (e.logp_old, e.logp_ref, e.values) = (lp, lr, v);
        }
    }
    Ok(eps)
}
