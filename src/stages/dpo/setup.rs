//! Setting up `rlhf dpo`: the rankings read, tokenized (with where each response starts) and
//! split by prompt, the policy's starting model, and the reference's log-probability of every
//! response.
//!
//! The reference is frozen, so its log-probabilities are computed once here, for the training
//! and the held-out responses, and cached: a step then runs only the policy (one forward and
//! backward per response), instead of a second forward of the reference over the same batch
//! every time a prompt is drawn. The cache is recomputed, not saved, when a run resumes: the
//! same code on the same data gives the same numbers.

use super::job::DpoJob;
use super::logps::{host_logprobs, Group};
use crate::checkpoint::{self, Loaded};
use crate::config::ModelConfig;
use crate::data::pairs::{split_prompts, tokenize_prefs, warn_cut, TokPrefs};
use crate::data::rankings::read_rankings_reported;
use crate::data::tokenizer::Tok;
use crate::model::Lm;
use anyhow::{bail, Context, Result};
use burn::prelude::*;
use std::path::Path;

/// What training starts from.
pub(super) struct Prepared {
    /// Training and held-out prompts with their responses, best first.
    pub groups: Vec<Group>,
    pub val: Vec<Group>,
    /// Records `--skip-invalid` left out.
    pub skipped_records: usize,
    /// The policy's config as trained and saved: dropout 0 (below).
    pub mcfg: ModelConfig,
    pub tok: Tok,
    /// The policy before the first step (the init checkpoint, dropout off; with fresh LoRA
    /// adapters when the job asks for them).
    pub init: Lm,
    /// The LoRA record of the checkpoints (None: every weight trains).
    pub lora: Option<crate::config::lora::LoraBase>,
}

/// The frozen reference: `--reference`, or the init checkpoint itself. It must have the policy's
/// tokenizer (the log-ratio compares two models on the same token ids) and a context that holds
/// the policy's sequences.
fn load_reference(job: &DpoJob, init: &Loaded, device: &Device) -> Result<Lm> {
    let Some(path) = &job.reference else {
        return Ok(init.model.clone().with_dropout(0.0));
    };
    let r = checkpoint::load_lm(path, device).context("dpo --reference")?;
    let read = |d: &Path| -> Result<Vec<u8>> {
        let f = d.join("tokenizer.json");
        std::fs::read(&f).with_context(|| format!("reading {}", f.display()))
    };
    if read(&r.dir)? != read(&init.dir)? {
        bail!(
            "dpo: the reference {} has a different tokenizer from the policy's {}",
            r.dir.display(),
            init.dir.display()
        );
    }
    if r.config.model.n_ctx < init.config.model.n_ctx {
        bail!(
            "dpo: the reference {} has a context of {} tokens, shorter than the policy's {}",
            r.dir.display(),
            r.config.model.n_ctx,
            init.config.model.n_ctx
        );
    }
    Ok(r.model.with_dropout(0.0))
}

/// Prompts shuffled (seeded) and split: (training, held-out).
fn split(job: &DpoJob, prefs: Vec<TokPrefs>) -> Result<(Vec<TokPrefs>, Vec<TokPrefs>)> {
    let seed = job.cfg.train.seed ^ 0xd90;
    split_prompts(prefs, job.cfg.val_fraction, seed, &job.data)
}

/// Each prompt with the reference's log-probabilities of its responses.
fn with_reference(
    reference: &Lm,
    prefs: Vec<TokPrefs>,
    pad: u32,
    per_batch: usize,
    device: &Device,
) -> Result<Vec<Group>> {
    let refs: Vec<&TokPrefs> = prefs.iter().collect();
    let lp = host_logprobs(reference, &refs, pad, per_batch, device)
        .context("dpo: the reference's log-probabilities")?;
    let mut at = 0;
    Ok(prefs
        .into_iter()
        .map(|p| {
            let k = p.seqs.len();
            at += k;
            Group {
                ref_logp: lp[at - k..at].to_vec(),
                prefs: p,
            }
        })
        .collect())
}

/// Reads and tokenizes the data, loads the policy's start and the reference, holds prompts out
/// and caches the reference's log-probabilities.
pub(super) fn prepare(job: &DpoJob, device: &Device) -> Result<Prepared> {
    let (rankings, skipped_records) = read_rankings_reported(&job.data, job.skip_invalid, "dpo")?;
    let init = checkpoint::load_lm(&job.init, device).context("dpo --init")?;
    let mut mcfg = init.config.model.clone();
    // dropout off (TRL's DPOTrainer does the same): with it, a policy equal to the reference
    // would not have log-ratio 0, and every implicit reward would carry mask noise
    mcfg.dropout = 0.0;
    let tok = init.tok.clone();
    let (prefs, cut) = tokenize_prefs(&tok, &rankings, mcfg.n_ctx)?;
    let n_seqs = prefs.iter().map(|g| g.seqs.len()).sum();
    warn_cut("dpo", cut, n_seqs, mcfg.n_ctx);
    let (train, val) = split(job, prefs)?;
    let t0 = std::time::Instant::now();
    let reference = load_reference(job, &init, device)?;
    let (policy, lora) = crate::stages::lora::adapt(
        init.model.clone().with_dropout(0.0),
        (&init.dir, &init.config),
        job.lora.as_ref(),
        job.cfg.train.seed,
        device,
    )?;
    let per_batch = job.cfg.train.batch_size;
    let groups = with_reference(&reference, train, tok.eot, per_batch, device)?;
    let val = with_reference(&reference, val, tok.eot, per_batch, device)?;
    let ks = rankings.iter().map(|r| r.responses.len());
    eprintln!(
        "dpo: {} train / {} held-out prompts (K = {}..{}); \
         the reference's log-probabilities of {n_seqs} responses cached in {:.1}s",
        groups.len(),
        val.len(),
        ks.clone().min().unwrap_or(0),
        ks.max().unwrap_or(0),
        t0.elapsed().as_secs_f64()
    );
    Ok(Prepared {
        groups,
        val,
        skipped_records,
        mcfg,
        tok,
        lora,
        init: policy,
    })
}
