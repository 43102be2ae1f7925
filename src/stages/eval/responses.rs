//! Sampling and scoring the responses of checkpoints, as `rlhf eval`, `rlhf bon` and the
//! frontier do: the evaluation's default sampling, a checkpoint loaded for inference, prompts
//! fitted to the context, responses generated in batches from one seeded stream, and reward-model
//! scores of the generated token ids.

use crate::checkpoint::{self, Loaded};
use crate::data::pairs::fit_prompt;
use crate::data::tokenizer::Tok;
use crate::model::generate::{generate_parallel, SampleConfig};
use crate::util::rng::Rng;
use anyhow::{bail, Context, Result};
use burn::prelude::*;
use indicatif::ProgressBar;
use std::path::Path;

/// The sampling `rlhf eval` uses by default: temperature 0.7, no top-k/top-p, 48 new tokens.
pub fn default_sampling() -> SampleConfig {
    SampleConfig {
        temperature: 0.7,
        top_k: 0,
        top_p: 1.0,
        max_new_tokens: 48,
    }
}

/// One response per prompt (token ids, closing token excluded), generated in batches from one
/// RNG seeded with `seed`; `progress` counts the prompts done.
pub(crate) fn generate_all(
    m: &Loaded,
    prompts: &[Vec<u32>],
    cfg: &SampleConfig,
    (seed, batch): (u64, usize),
    progress: &ProgressBar,
    device: &Device,
) -> Result<Vec<Vec<u32>>> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(batch.max(1)) {
        out.extend(generate_parallel(
            &m.model, chunk, cfg, m.tok.eot, &mut rng, device,
        )?);
        progress.inc(chunk.len() as u64);
    }
    Ok(out)
}

/// The prompts' token ids in the template, each cut from the left to leave `limit` tokens of
/// room (the last of which may be the closing one) in a context of `n_ctx`.
pub(crate) fn fitted_prompts(
    tok: &Tok,
    prompts: &[String],
    limit: usize,
    n_ctx: usize,
) -> Result<Vec<Vec<u32>>> {
    prompts
        .iter()
        .map(|p| Ok(fit_prompt(&tok.prompt_ids(p)?, limit - 1, n_ctx)))
        .collect()
}

/// The tokenizer file of a checkpoint, parsed, to check two models read the same tokens.
pub(super) fn tokenizer_json(m: &Loaded) -> Result<serde_json::Value> {
    crate::config::load_json(&m.dir.join("tokenizer.json"))
}

pub(crate) fn load(path: &Path, what: &str, device: &Device) -> Result<Loaded> {
    let m = checkpoint::load_lm(path, device).with_context(|| format!("loading the {what}"))?;
    Ok(Loaded {
        model: m.model.valid(),
        ..m
    })
}

/// Scores with the RM: reward (bias included) of each response of each list to its prompt, from
/// the token ids the policy generated, as PPO scores its rollouts (decoding and re-encoding
/// could give other tokens, and would turn an empty response into a space). The RM must read
/// the policy's tokens and fit its sequences.
pub fn rm_scores<const N: usize>(
    rm: &Path,
    policy: &Loaded,
    prompt_ids: &[Vec<u32>],
    gen: [&[Vec<u32>]; N],
    n_ctx: usize,
    device: &Device,
) -> Result<[Vec<f64>; N]> {
    let loaded = checkpoint::load_rm(rm, device)?;
    let rm_tok: serde_json::Value = crate::config::load_json(&loaded.dir.join("tokenizer.json"))?;
    if rm_tok != tokenizer_json(policy)? || loaded.config.model.n_ctx < n_ctx {
        bail!(
            "the reward model {} does not read the policy's tokens or fit its context ({n_ctx}); \
             eval scores the generated token ids with it",
            rm.display()
        );
    }
    let bias = loaded.config.reward_bias.unwrap_or(0.0);
    let model = loaded.model.valid();
    let eot = policy.tok.eot;
    let rm_ctx = loaded.config.model.n_ctx;
    let score = |resp: &[Vec<u32>]| -> Result<Vec<f64>> {
        // a response that used all of its room leaves no place for the closing token the RM
        // reads: the prompt is cut from the left, the rule the RM's training pairs follow
        let fitted: Vec<Vec<u32>> = prompt_ids
            .iter()
            .zip(resp)
            .map(|(p, r)| fit_prompt(p, r.len(), rm_ctx))
            .collect();
        let pairs: Vec<(&[u32], &[u32])> = fitted
            .iter()
            .zip(resp)
            .map(|(p, r)| (p.as_slice(), r.as_slice()))
            .collect();
        let r = crate::model::score::score_responses(&model, &pairs, eot, 32, device)?;
        Ok(r.into_iter().map(|x| x as f64 + bias).collect())
    };
    let mut out: [Vec<f64>; N] = std::array::from_fn(|_| Vec::new());
    for (o, g) in out.iter_mut().zip(gen) {
        *o = score(g)?;
    }
    Ok(out)
}
