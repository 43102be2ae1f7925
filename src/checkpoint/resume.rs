//! Resuming a stage from the checkpoint in its `--out`: the checks that it was made for the model
//! and tokenizer this run uses, and the training state (step, RNG, AdamW moments) read back,
//! every failure naming the file and saying the checkpoint cannot be resumed.

use super::{param_ids, TrainState};
use crate::config::{load_json, ModelConfig};
use crate::data::tokenizer::Tok;
use anyhow::{anyhow, bail, Result};
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use std::path::Path;

/// Sets ParamIds in visiting order, so a restored optimizer record matches the parameters.
struct SetIds(Vec<u64>, usize);
impl ModuleMapper for SetIds {
    fn map_float<const D: usize>(&mut self, mut p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if let Some(&id) = self.0.get(self.1) {
            p.id = ParamId::from(id);
        }
        self.1 += 1;
        p
    }
}

/// The language model of the checkpoint a stage resumes from, once [`check_resumable`] found it
/// made for `expected` (the model and tokenizer this run uses).
pub fn load_resumable_lm(
    dir: &Path,
    expected: (&ModelConfig, &Tok),
    device: &Device,
) -> Result<crate::model::Lm> {
    let loaded = super::load_lm(dir, device)?;
    check_resumable(dir, (&loaded.config.model, &loaded.tok), expected)?;
    Ok(loaded.model)
}

/// Errs unless a checkpoint found in a stage's `--out` (to resume from) was made for the model
/// and tokenizer this run uses: resuming onto another architecture would silently train the old
/// one, and onto another tokenizer of the same size would train its embeddings on other tokens.
pub fn check_resumable(
    dir: &Path,
    (saved, saved_tok): (&ModelConfig, &Tok),
    (expected, tok): (&ModelConfig, &Tok),
) -> Result<()> {
    if saved != expected {
        bail!(
            "cannot resume from {}: it holds a different model ({saved:?}) from the one this run \
             builds ({expected:?}); use a new --out, or rerun with the checkpoint's settings",
            dir.display()
        );
    }
    check_same_tokenizer(dir, saved_tok, tok)
}

/// Errs unless the checkpoint `dir` to resume from was trained with `tok` (the same vocabulary,
/// merges and special tokens, not only the same size).
pub fn check_same_tokenizer(dir: &Path, saved: &Tok, tok: &Tok) -> Result<()> {
    if !saved.same_as(tok)? {
        bail!(
            "cannot resume from {}: it was trained with another tokenizer ({}) than the one this \
             run uses, though both have {} tokens; use a new --out, or rerun with the \
             checkpoint's tokenizer",
            dir.display(),
            dir.join("tokenizer.json").display(),
            saved.vocab_size()
        );
    }
    Ok(())
}

/// Restores the training state of a checkpoint: train state, and the optimizer record matched
/// to `model`'s parameters. Returns the model with its ParamIds set as when it was saved.
pub fn load_resume<M: Module>(
    dir: &Path,
    model: M,
    optim: ModuleOptimizer,
) -> Result<(M, ModuleOptimizer, TrainState)> {
    read_resume(dir, model, optim).map_err(|e| {
        anyhow!(
            "cannot resume from {}: {e:#}; the checkpoint is corrupt or truncated: start over \
             with a new --out",
            dir.display()
        )
    })
}

/// [`load_resume`]'s work; its errors name the file and what is wrong with it.
fn read_resume<M: Module>(
    dir: &Path,
    model: M,
    optim: ModuleOptimizer,
) -> Result<(M, ModuleOptimizer, TrainState)> {
    let state: TrainState = load_json(&dir.join("train_state.json"))?;
    let opt_path = dir.join("optimizer.bpk");
    if !opt_path.is_file() {
        return Ok((model, optim, state));
    }
    let ids_path = dir.join("param_ids.json");
    let ids: Vec<u64> = load_json(&ids_path)?;
    // ids that do not name every parameter once would leave some parameters' AdamW moments
    // behind without a word (burn starts a parameter without a record afresh)
    let n = param_ids(&model).len();
    let distinct: std::collections::HashSet<u64> = ids.iter().copied().collect();
    if ids.len() != n || distinct.len() != n {
        bail!(
            "{}: {} ids ({} distinct) for a model of {n} parameter tensors",
            ids_path.display(),
            ids.len(),
            distinct.len()
        );
    }
    let model = model.map(&mut SetIds(ids, 0));
    let optim = optim
        .load(&opt_path)
        .map_err(|e| anyhow!("reading {}: {e}", opt_path.display()))?;
    Ok((model, optim, state))
}
