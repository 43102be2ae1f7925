//! Scoring tokenized prompt + response sequences with a reward model, batched: all K
//! responses of a prompt in one forward (training and held-out accuracy), and whole sets of
//! rankings in chunks (the normalisation bias, `rlhf score`, eval).

use super::RewardModel;
use crate::data::pairs::{pad_batch, TokRanking};
use crate::util::tensors::{ints, to_vec};
use anyhow::Result;
use burn::prelude::*;

/// Rewards of every response of `group` (prompt-major), in one forward. → (N,), ks
pub fn group_rewards(
    model: &RewardModel,
    group: &[&TokRanking],
    pad: u32,
    device: &Device,
) -> (Tensor<1>, Vec<usize>) {
    let seqs: Vec<&Vec<u32>> = group.iter().flat_map(|r| r.seqs.iter()).collect();
    let (ids, t, lens) = pad_batch(&seqs, pad);
    let ks = group.iter().map(|r| r.seqs.len()).collect();
    (
        model.forward(ints(&ids, [seqs.len(), t], device), &lens),
        ks,
    )
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
                let (r, k) = group_rewards(model, &refs, pad, device);
                Ok((to_vec(r)?, k))
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
