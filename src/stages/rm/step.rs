//! One reward-model training step over a batch of prompts, cut into micro-batches of prompts
//! (`util::shards`: parallel threads on the CPU backend). The ranking loss is a mean over
//! prompts, so each micro-batch's gradient is weighted by its share of the prompts; all K
//! responses of a prompt stay in one micro-batch, as the paper's one-batch-per-prompt rule asks.

use crate::config::TrainConfig;
use crate::data::pairs::TokRanking;
use crate::model::dropout::{seed_masks, seed_masks_padded};
use crate::model::score::group_rewards;
use crate::model::RewardModel;
use crate::train::clip::{read_with_norms, sum_squares};
use crate::train::guard::Guard;
use crate::train::trained::StepGrads;
use crate::util::shards;
use anyhow::Result;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;

/// What a step produced: every reward (prompt-major, on the host), the K of every prompt, and
/// the batch's loss with the combined gradient and its norm.
pub struct RmStep {
    pub rewards: Vec<f32>,
    pub ks: Vec<usize>,
    /// Sequences the reward model scored in this step (its own count, [`RewardModel::forwarded`]).
    pub rows: usize,
    pub grads: StepGrads,
}

/// One step. The micro-batches run on parallel threads on the CPU backend, each padded to its
/// own longest sequence; on a GPU the whole batch runs in one pass, padded to the longest of
/// all, each micro-batch's rows reading their own dropout stream over their own padded length
/// (`model::dropout::seed_masks_padded`), so both devices drop the same elements. The rewards,
/// losses and the gradient's Σg² come back in one transfer.
pub fn rm_step(
    model: &RewardModel,
    group: &[&TokRanking],
    pad: u32,
    cfg: &TrainConfig,
    step: usize,
    guard: &Guard,
    ad: &Device,
) -> Result<RmStep> {
    let micro = shards::ranges(group.len(), cfg.micro_batches);
    let one_pass = !shards::is_cpu(ad) && micro.len() > 1;
    let parts: Vec<std::ops::Range<usize>> = if one_pass {
        std::iter::once(0..group.len()).collect()
    } else {
        micro.clone()
    };
    let total = group.len().max(1) as f64;
    // each micro-batch's sequences and the length it would pad to alone (the one-pass layout)
    let seqs = |r: &std::ops::Range<usize>| group[r.clone()].iter().flat_map(|g| &g.seqs);
    let micro_rows: Vec<usize> = micro.iter().map(|r| seqs(r).count()).collect();
    let micro_lens: Vec<usize> = micro
        .iter()
        .map(|r| seqs(r).map(|s| s.len()).max().unwrap_or(1))
        .collect();
    let scored_before = model.forwarded.get();
    let outs = shards::run(parts.len(), ad, |i| {
        if one_pass {
            seed_masks_padded(cfg.seed, step, &micro_rows, &micro_lens);
        } else {
            seed_masks(cfg.seed, step, i);
        }
        let m = model.clone().fork(ad);
        let g = group_rewards(&m, &group[parts[i].clone()], pad, ad);
        let (rewards, ks) = (g.rewards, g.ks);
        let loss = guard.poison(
            step,
            crate::kernels::ranking_loss::ranking_loss(rewards.clone(), &ks)?,
        );
        let share = parts[i].len() as f64 / total;
        let grads = GradientsParams::from_grads(loss.clone().backward(), &m);
        Ok((rewards.detach(), loss.detach(), ks, (grads, share)))
    })?;
    let rows = model.forwarded.get() - scored_before;
    let (mut read, mut shares, mut ks, mut parts_g) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (r, l, k, g) in outs {
        read.extend([r, l]);
        shares.push(g.1);
        ks.push(k);
        parts_g.push(g);
    }
    let grads = shards::combine(model, parts_g);
    let (v, norms) = read_with_norms(read, vec![sum_squares(model, &grads)])?;
    let (mut at, mut loss, mut rewards) = (0, 0.0, Vec::new());
    for (k, share) in ks.iter().zip(&shares) {
        let n: usize = k.iter().sum();
        rewards.extend_from_slice(&v[at..at + n]);
        loss += v[at + n] as f64 * share;
        at += n + 1;
    }
    Ok(RmStep {
        rewards,
        ks: ks.concat(),
        rows,
        grads: StepGrads {
            loss,
            grad_norm: norms[0],
            grads,
        },
    })
}
