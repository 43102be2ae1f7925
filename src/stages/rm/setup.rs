//! Setting up `rlhf rm`: the rankings read, tokenized and split by prompt (all of a prompt's
//! responses on one side), and the model to train — the SFT trunk with a fresh head, or a
//! reward model trained further (later rounds of the pipeline retrain the previous RM).

use super::job::RmJob;
use crate::checkpoint::{self, CheckpointConfig, CheckpointKind, Loaded};
use crate::config::lora::LoraBase;
use crate::config::ModelConfig;
use crate::data::pairs::{split_prompts, tokenize_rankings, warn_cut, TokRanking};
use crate::data::rankings::read_rankings_reported;
use crate::data::tokenizer::Tok;
use crate::model::{InitRng, RewardModel};
use crate::stages::lora;
use anyhow::{bail, Context, Result};
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
    /// The LoRA record of the checkpoints (None: every weight trains).
    pub lora: Option<LoraBase>,
    init_config: CheckpointConfig,
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
    if from_rm && init.config.lora.is_none() && job.lora.is_some() {
        bail!(
            "{}: LoRA adapters for a reward model start from a language model (--init an SFT \
             model), not from a fully trained reward model",
            init.dir.display()
        );
    }
    let lora = crate::stages::lora::plan((&init.dir, &init.config), job.lora.as_ref())?;
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
        lora,
        init_config: init.config,
    })
}

impl Prepared {
    /// The model training starts from (not resuming). From a language model, a fresh reward
    /// model is drawn from `seed` (trunk, then head: the head is the draw after the trunk's) and
    /// its trunk replaced by the language model's weights.
    pub fn init_model(&self, seed: u64, device: &Device) -> Result<RewardModel> {
        if self.from_rm {
            return Ok(checkpoint::load_rm(&self.init_dir, device)?.model);
        }
        let fresh = RewardModel::new(&self.mcfg, &mut InitRng::new(seed), device);
        let trunk = checkpoint::load_lm(&self.init_dir, device)?.model;
        let trunk = lora::apply(trunk, &self.init_config, self.lora.as_ref(), seed, device);
        Ok(RewardModel {
            transformer: trunk,
            score: fresh.score,
            forwarded: fresh.forwarded,
        })
    }
}
