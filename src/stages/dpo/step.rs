//! One DPO training step over a batch of prompts, cut into micro-batches of prompts
//! (`util::shards`: parallel threads on the CPU backend; one pass on a GPU). All K responses of
//! a prompt stay in one micro-batch — its C(K,2) pairs need all of them — and each response
//! runs through the policy once. The loss is a mean over prompts, so each micro-batch's gradient
//! is weighted by its share of the prompts. Dropout is off, so how the batch is cut changes
//! nothing but float summation order.

use super::logps::{flatten, Group};
use super::loss::dpo_loss;
use crate::data::pairs::TokPrefs;
use crate::model::logprob::response_logprobs;
use crate::model::Lm;
use crate::train::clip::{read_with_norms, sum_squares};
use crate::train::guard::Guard;
use crate::train::trained::StepGrads;
use crate::util::shards;
use crate::util::tensors::floats;
use anyhow::Result;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;

/// What a step produced: the policy's log-probability of every response (prompt-major, on the
/// host), the K of every prompt, and the batch's loss with the combined gradient and its norm.
pub struct DpoStep {
    pub logp: Vec<f32>,
    pub ks: Vec<usize>,
    /// Sequences run through the policy.
    pub rows: usize,
    pub grads: StepGrads,
}

/// The step's inputs besides the model and the batch.
pub struct StepArgs<'a> {
    pub beta: f64,
    pub micro_batches: usize,
    pub pad: u32,
    pub step: usize,
    pub guard: &'a Guard,
    /// The autodiff device.
    pub ad: &'a Device,
}

/// One step: log-probabilities, loss and gradient of `group`. The losses, log-probabilities and
/// the gradient's Σg² come back in one transfer.
pub fn dpo_step(model: &Lm, group: &[&Group], a: &StepArgs<'_>) -> Result<DpoStep> {
    let parts = if shards::is_cpu(a.ad) {
        shards::ranges(group.len(), a.micro_batches)
    } else {
        std::iter::once(0..group.len()).collect()
    };
    let total = group.len().max(1) as f64;
    let outs = shards::run(parts.len(), a.ad, |i| {
        let g = &group[parts[i].clone()];
        let prefs: Vec<&TokPrefs> = g.iter().map(|x| &x.prefs).collect();
        let (seqs, starts, ks) = flatten(&prefs);
        let refs: Vec<f32> = g.iter().flat_map(|x| x.ref_logp.iter().copied()).collect();
        let m = model.clone().fork(a.ad);
        let logp = response_logprobs(&m, &seqs, &starts, a.pad, a.ad); // (n,)
        let logp_ref = floats(&refs, [refs.len()], a.ad); // (n,)
        let loss = a
            .guard
            .poison(a.step, dpo_loss(logp.clone(), logp_ref, &ks, a.beta)?);
        let share = parts[i].len() as f64 / total;
        let grads = GradientsParams::from_grads(loss.clone().backward(), &m);
        Ok((logp.detach(), loss.detach(), ks, (grads, share)))
    })?;
    let (mut read, mut shares, mut ks, mut parts_g) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (lp, l, k, g) in outs {
        read.extend([lp, l]);
        shares.push(g.1);
        ks.push(k);
        parts_g.push(g);
    }
    let grads = shards::combine(model, parts_g);
    let (v, norms) = read_with_norms(read, vec![sum_squares(model, &grads)])?;
    let (mut at, mut loss, mut logp) = (0, 0.0, Vec::new());
    for (k, share) in ks.iter().zip(&shares) {
        let n: usize = k.iter().sum();
        logp.extend_from_slice(&v[at..at + n]);
        loss += f64::from(v[at + n]) * share;
        at += n + 1;
    }
    Ok(DpoStep {
        rows: logp.len(),
        logp,
        ks: ks.concat(),
        grads: StepGrads {
            loss,
            grad_norm: norms[0],
            grads,
        },
    })
}
