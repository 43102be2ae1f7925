//! Sequence log-probabilities of whole sets of rankings without gradients: the reference's,
//! cached once at setup, and the policy's on held-out prompts. Chunks of prompts go through
//! [`response_logprobs`], the function the training step differentiates, so a policy equal to
//! its reference gives log-ratios of 0 up to float rounding of different padding.

use crate::data::pairs::TokPrefs;
use crate::model::logprob::response_logprobs;
use crate::model::Lm;
use crate::util::shards;
use crate::util::tensors::to_vec;
use anyhow::{bail, Result};
use burn::prelude::*;

/// One prompt's responses (best first) and the reference's log-probability of each.
#[derive(Debug, Clone)]
pub struct Group {
    pub prefs: TokPrefs,
    /// log π_ref(y_i|x), summed over the response's tokens and its closing `<|endoftext|>`.
    pub ref_logp: Vec<f32>,
}

/// The sequences and response starts of `groups`, prompt-major, and the K of each prompt.
pub fn flatten<'a>(groups: &[&'a TokPrefs]) -> (Vec<&'a [u32]>, Vec<usize>, Vec<usize>) {
    let seqs = groups
        .iter()
        .flat_map(|g| g.seqs.iter().map(Vec::as_slice))
        .collect();
    let starts = groups
        .iter()
        .flat_map(|g| g.starts.iter().copied())
        .collect();
    let ks = groups.iter().map(|g| g.seqs.len()).collect();
    (seqs, starts, ks)
}

/// log π(y|x) of every response of `groups` (prompt-major), `per_batch` prompts per forward,
/// the two halves of the list on parallel threads on the CPU backend. `model` is an inference
/// model (no autodiff). A non-finite value is an error: it would poison every step it enters.
pub fn host_logprobs(
    model: &Lm,
    groups: &[&TokPrefs],
    pad: u32,
    per_batch: usize,
    device: &Device,
) -> Result<Vec<f32>> {
    let v = shards::concat_ranges(groups.len(), 2, device, |_, half| {
        let mut out = Vec::new();
        for chunk in groups[half].chunks(per_batch.max(1)) {
            let (seqs, starts, _) = flatten(chunk);
            out.extend(to_vec(response_logprobs(
                model, &seqs, &starts, pad, device,
            ))?);
        }
        Ok(out)
    })?;
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        bail!("non-finite log-probability of response {i} of {}", v.len());
    }
    Ok(v)
}
