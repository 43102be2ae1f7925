//! One reward-model training step over a batch of prompts, cut into micro-batches of prompts
//! (`util::shards`: parallel threads on the CPU backend). The ranking loss is a mean over
//! prompts, so each micro-batch's gradient is weighted by its share of the prompts; all K
//! responses of a prompt stay in one micro-batch, as the paper's one-batch-per-prompt rule asks.

use crate::config::TrainConfig;
use crate::data::pairs::TokRanking;
use crate::model::dropout::seed_masks;
use crate::model::score::group_rewards;
use crate::model::RewardModel;
use crate::train::guard::Guard;
use crate::util::shards;
use crate::util::tensors::to_vec;
use anyhow::Result;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;

/// What a step produced: the batch's loss, every reward (prompt-major, on the host), the K of
/// every prompt, and the combined gradient.
pub struct RmStep {
    pub loss: f64,
    pub rewards: Vec<f32>,
    pub ks: Vec<usize>,
    /// Sequences run through the trunk.
    pub rows: usize,
    pub grads: GradientsParams,
}

pub fn rm_step(
    model: &RewardModel,
    group: &[&TokRanking],
    pad: u32,
    cfg: &TrainConfig,
    step: usize,
    guard: &Guard,
    ad: &Device,
) -> Result<RmStep> {
    let parts = shards::ranges(group.len(), cfg.micro_batches);
    let total = group.len().max(1) as f64;
    let outs = shards::run(parts.len(), ad, |i| {
        seed_masks(cfg.seed, step, i);
        let m = model.clone().fork(ad);
        let g = group_rewards(&m, &group[parts[i].clone()], pad, ad);
        let (rewards, ks) = (g.rewards, g.ks);
        let host = to_vec(rewards.clone().detach())?;
        let loss = guard.poison(
            step,
            crate::kernels::ranking_loss::ranking_loss(rewards, &ks)?,
        );
        let share = parts[i].len() as f64 / total;
        let loss_v = loss.clone().into_scalar::<f32>() as f64 * share;
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        Ok((loss_v, host, ks, g.rows, (grads, share)))
    })?;
    let (mut loss, mut rewards, mut ks, mut rows, mut parts_g) =
        (0.0, Vec::new(), Vec::new(), 0, Vec::new());
    for (l, r, k, n, g) in outs {
        loss += l;
        rewards.extend(r);
        ks.extend(k);
        rows += n;
        parts_g.push(g);
    }
    Ok(RmStep {
        loss,
        rewards,
        ks,
        rows,
        grads: shards::combine(model, parts_g),
    })
}
