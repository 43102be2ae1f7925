//! Setting up `rlhf rm`: the rankings read, tokenized and split by prompt (all of a prompt's
//! responses on one side), and the model to train — the SFT trunk with a fresh head, or a
//! reward model trained further (later rounds of the pipeline retrain the previous RM).

use super::job::RmJob;
use crate::checkpoint::{self, CheckpointKind, Loaded};
use crate::config::ModelConfig;
use crate::data::pairs::{split_prompts, tokenize_rankings, warn_cut, TokRanking};
use crate::data::rankings::read_rankings_reported;
use crate::data::tokenizer::Tok;
use crate::model::{InitRng, RewardModel};
use anyhow::{Context, Result};
use burn::prelude::*;
use std::path::PathBuf;

/// What training starts from.
pub(super) struct Prepared {
    /// Training and held-out prompts, each with its tokenized responses, best first.
    pub groups: Vec<TokRanking>,
    pub val: Vec<TokRanking>,
    /// Records `--skip-invalid` left out.
    pub skipped_records: usize,
    /// The model's config as saved (dropout 0: a reward must not depend on a dropout mask).
    pub mcfg: ModelConfig,
    pub tok: Tok,
    /// The starting checkpoint, and whether it is already a reward model.
    init_dir: PathBuf,
    from_rm: bool,
}

/// The starting checkpoint: a language model gives the trunk, a reward model is trained further.
fn load_init(job: &RmJob, device: &Device) -> Result<(Loaded, bool)> {
    let from_rm = checkpoint::kind_of(&job.init)? == CheckpointKind::Rm;
    let loaded = if from_rm {
        let r = checkpoint::load_rm(&job.init, device)?;
        Loaded {
            dir: r.dir,
            model: r.model.transformer,
            config: r.config,
            tok: r.tok,
        }
    } else {
        checkpoint::load_lm(&job.init, device)?
    };
    Ok((loaded, from_rm))
}

/// Reads and tokenizes the data, loads the starting checkpoint, holds prompts out.
pub(super) fn prepare(job: &RmJob, device: &Device) -> Result<Prepared> {
    let (rankings, skipped_records) = read_rankings_reported(&job.data, job.skip_invalid, "rm")?;
    let (init, from_rm) = load_init(job, device)?;
    let mut mcfg = init.config.model.clone();
    // the training copy's dropout passes the model's own checks
    ModelConfig {
        dropout: job.dropout,
        ..mcfg.clone()
    }
    .validate()
    .context("rm --dropout")?;
    mcfg.dropout = 0.0; // saved config: a reward must not depend on a dropout mask
    let tok = init.tok.clone();
    let (groups, cut) = tokenize_rankings(&tok, &rankings, mcfg.n_ctx)?;
    let n_seqs = groups.iter().map(|g| g.seqs.len()).sum();
    warn_cut("rm", cut, n_seqs, mcfg.n_ctx);
    let seed = job.train.seed ^ 0xa11ce;
    let (groups, val) = split_prompts(groups, job.val_fraction, seed, &job.data)?;
    let ks = rankings.iter().map(|r| r.responses.len());
    eprintln!(
        "rm: {} train / {} held-out prompts (K = {}..{})",
        groups.len(),
        val.len(),
        ks.clone().min().unwrap_or(0),
        ks.max().unwrap_or(0)
    );
    Ok(Prepared {
        groups,
        val,
        skipped_records,
        mcfg,
        tok,
        init_dir: init.dir,
        from_rm,
    })
}

impl Prepared {
    /// The model training starts from (not resuming). From a language model, a fresh reward
    /// model is drawn from `seed` (trunk, then head: the head is the draw after the trunk's) and
    /// its trunk replaced by the language model's weights.
    pub fn init_model(&self, seed: u64, device: &Device) -> Result<RewardModel> {
        let weights = self.init_dir.join("model.safetensors");
        Ok(if self.from_rm {
            checkpoint::load_weights(RewardModel::zeroed(&self.mcfg, device), &weights)?
        } else {
            let fresh = RewardModel::new(&self.mcfg, &mut InitRng::new(seed), device);
            RewardModel {
                transformer: checkpoint::load_weights(fresh.transformer, &weights)?,
                score: fresh.score,
                forwarded: fresh.forwarded,
            }
        })
    }
}
