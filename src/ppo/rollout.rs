//! Rollouts: the policy answers a batch of prompts (batched, KV-cached sampling), then one
//! forward pass each of the policy, the frozen reference and the value model over the
//! right-padded episodes records log π_old, log π_SFT and V_old at every action, and the reward
//! is scored. All of it runs without gradients.

use super::episode::{Episode, Grid};
use crate::model::generate::{generate_parallel, SampleConfig};
use crate::model::loss::token_logprobs;
use crate::model::{Gpt, RewardModel};
use crate::util::rng::Rng;
use crate::util::shards;
use crate::util::tensors::{ints, to_vec};
use anyhow::{anyhow, Result};
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
                    let mut out = Vec::new();
                    for part in eps[half].chunks(chunk.max(1)) {
                        // the RM was trained on `prompt + response + <|endoftext|>`
                        let seqs: Vec<Vec<u32>> = part
                            .iter()
                            .map(|e| {
                                let mut s: Vec<u32> =
                                    e.prompt.iter().chain(e.response()).copied().collect();
                                s.push(eot);
                                s
                            })
                            .collect();
                        let t = seqs.iter().map(|s| s.len()).max().unwrap_or(1);
                        let mut ids = vec![eot as i64; seqs.len() * t];
                        for (r, s) in seqs.iter().enumerate() {
                            for (j, &x) in s.iter().enumerate() {
                                ids[r * t + j] = x as i64;
                            }
                        }
                        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
                        let r = rm.forward(ints(&ids, [seqs.len(), t], device), &lens);
                        out.extend(to_vec(r)?.into_iter().map(|x| x + bias));
                    }
                    Ok(out)
                })
            }
        }
    }
}

/// The inference-mode models a rollout needs.
pub struct RolloutModels<'a> {
    pub policy: &'a Gpt,
    pub reference: &'a Gpt,
    pub value: &'a RewardModel,
}

/// Samples one response per prompt and records log-probs and values. Prompts must already fit
/// (`len + max_new_tokens + 1 ≤ n_ctx`, see `data::pairs::fit_prompt`). Forwards run `chunk` episodes at a time.
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
        // three independent forwards: parallel threads on the CPU backend (`util::shards`)
        let outs = shards::run(3, device, |i| {
            let x = ints(&g.x, [g.b, g.t], device);
            let y = ints(&g.y, [g.b, g.t], device);
            let host = match i {
                0 => to_vec(token_logprobs(m.policy.forward(x), y))?,
                1 => to_vec(token_logprobs(m.reference.forward(x), y))?,
                _ => to_vec(m.value.values(x))?,
            };
            Ok(g.gather(&host))
        })?;
        let [lp, lr, v]: [Vec<Vec<f32>>; 3] = outs
            .try_into()
            .map_err(|_| anyhow!("rollout forwards: expected 3 results"))?;
        for (((e, lp), lr), v) in part.iter_mut().zip(lp).zip(lr).zip(v) {
            (e.logp_old, e.logp_ref, e.values) = (lp, lr, v);
        }
    }
    Ok(eps)
}
