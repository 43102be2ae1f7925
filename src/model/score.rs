//! Scoring tokenized prompt + response sequences with a reward model, batched: all K
//! responses of a prompt in one forward (training and held-out accuracy), and whole sets of
//! rankings in chunks (the normalisation bias, `rlhf score`, eval).

use super::RewardModel;
use crate::data::pairs::{pad_batch, TokRanking};
use crate::util::tensors::{ints, to_vec};
use anyhow::Result;
use burn::prelude::*;

/// The rewards of a group of rankings.
pub struct GroupRewards {
    /// Every response's reward, prompt-major. (N,)
    pub rewards: Tensor<1>,
    /// K of every prompt.
    pub ks: Vec<usize>,
}

/// Rewards of every response of `group` (prompt-major), in one forward.
pub fn group_rewards(
    model: &RewardModel,
    group: &[&TokRanking],
    pad: u32,
    device: &Device,
) -> GroupRewards {
    let seqs: Vec<&Vec<u32>> = group.iter().flat_map(|r| r.seqs.iter()).collect();
    let (ids, t, lens) = pad_batch(&seqs, pad);
    let idx = ints(&ids, [seqs.len(), t], device);
    GroupRewards {
        rewards: model.forward(idx, &lens),
        ks: group.iter().map(|r| r.seqs.len()).collect(),
    }
}

/// Scores groups in chunks of `prompts_per_batch` (two halves of the groups on parallel threads
/// on the CPU backend); returns host rewards and ks.
pub fn score_groups(
    model: &RewardModel,
    groups: &[TokRanking],
    pad: u32,
    per_batch: usize,
    device: &Device,
) -> Result<(Vec<f32>, Vec<usize>)> {
    let chunks = crate::util::shards::concat_ranges(groups.len(), 2, device, |_, half| {
        groups[half]
            .chunks(per_batch.max(1))
            .map(|chunk| {
                let refs: Vec<&TokRanking> = chunk.iter().collect();
                let g = group_rewards(model, &refs, pad, device);
                Ok((to_vec(g.rewards)?, g.ks))
            })
            .collect()
    })?;
    let (mut all, mut ks) = (Vec::new(), Vec::new());
    for (a, k) in chunks {
        all.extend(a);
        ks.extend(k);
    }
    Ok((all, ks))
}

/// The sequence a reward model scores for a generated response: `prompt + response +
/// <|endoftext|>`, as the RM was trained on (`data::pairs::tokenize_pair`). `response` excludes
/// the closing token (a response cut at the limit is scored as if it had ended).
pub fn scored_sequence(prompt: &[u32], response: &[u32], eot: u32) -> Vec<u32> {
    let mut s: Vec<u32> = prompt.iter().chain(response).copied().collect();
    s.push(eot);
    s
}

/// Rewards (without the normalisation bias) of generated responses to their prompts, from their
/// token ids (never re-tokenised text), `chunk` sequences per forward: how PPO scores its
/// rollouts and `rlhf eval` its samples. → host rewards, one per response
pub fn score_responses(
    model: &RewardModel,
    pairs: &[(&[u32], &[u32])],
    eot: u32,
    chunk: usize,
    device: &Device,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(pairs.len());
    for part in pairs.chunks(chunk.max(1)) {
        let seqs: Vec<Vec<u32>> = part
            .iter()
            .map(|(p, r)| scored_sequence(p, r, eot))
            .collect();
        let refs: Vec<&Vec<u32>> = seqs.iter().collect();
        let (ids, t, lens) = pad_batch(&refs, eot);
        out.extend(to_vec(
            model.forward(ints(&ids, [seqs.len(), t], device), &lens),
        )?);
    }
    Ok(out)
}
