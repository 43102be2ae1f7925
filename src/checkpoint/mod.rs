//! Checkpoints: a directory with `model.safetensors` (GPT-2 tensor names), `config.json` (the
//! resolved model config and what produced it), `tokenizer.json`, and for resuming a stage
//! `optimizer.bpk` (burn's optimizer record), `param_ids.json` and `train_state.json`.
//!
//! Writes are atomic at the directory level: everything goes to `ckpt.tmp/`, then the old
//! `ckpt/` is moved aside and `ckpt.tmp/` renamed into place. A crash at any point leaves either
//! the old or the new checkpoint complete.

use crate::config::{load_json, save_json, ModelConfig};
use crate::data::tokenizer::Tok;
use crate::model::Lm;
use anyhow::{anyhow, bail, Context, Result};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod finite;
pub mod lora;
mod resume;

pub use finite::check_finite;
pub use resume::{check_resumable, check_same_tokenizer, load_resumable_lm, load_resume};

/// What a checkpoint holds; written into `config.json` as `"lm"` or `"rm"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointKind {
    /// A language model (pretrain, SFT, a PPO policy).
    Lm,
    /// A reward model (the trunk plus a scalar head; PPO's value model too).
    Rm,
}

impl std::fmt::Display for CheckpointKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Lm => "lm",
            Self::Rm => "rm",
        })
    }
}

/// What `config.json` in a checkpoint holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointConfig {
    /// A language model or a reward model.
    pub kind: CheckpointKind,
    /// The stage that wrote it (`pretrain`, `sft`, ...).
    pub stage: String,
    pub model: ModelConfig,
    /// Reward models only: added to the head's output so that the mean score of the
    /// normalisation responses is 0 (InstructGPT normalised its RM this way before PPO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_bias: Option<f64>,
    /// Reward models only, a record: the factor `rlhf rm` multiplied the head by so that the
    /// normalisation responses' scores have sd 1 (the head in `model.safetensors` already
    /// includes it; nothing multiplies by it again). None: not scale-normalised (mid-run
    /// checkpoints, models imported or saved before the scale was normalised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_gain: Option<f64>,
    /// A LoRA checkpoint: its adapters' settings and base (`model.safetensors` then holds the
    /// adapters and any head only). None: a full model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<crate::config::lora::LoraBase>,
}

/// Everything a stage needs to continue exactly where it stopped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps done.
    pub step: usize,
    /// Our RNG (batch sampling, token sampling).
    pub rng: crate::util::rng::Rng,
    /// True once the stage has run all its steps.
    pub finished: bool,
    /// Stage-specific state (e.g. the KL controller, data cursor).
    #[serde(default)]
    pub extra: serde_json::Value,
}

/// Finds the checkpoint directory from a user path: the checkpoint itself or a stage directory
/// holding `ckpt/`.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    if path.join("model.safetensors").is_file() {
        return Ok(path.to_path_buf());
    }
    for sub in ["ckpt", "ckpt.old"] {
        let p = path.join(sub);
        if p.join("model.safetensors").is_file() {
            return Ok(p);
        }
    }
    if !path.exists() {
        bail!("checkpoint {} does not exist", path.display());
    }
    bail!(
        "{} is not a checkpoint (no model.safetensors in it or in its ckpt/)",
        path.display()
    )
}

/// True when the stage directory `out` holds a finished stage (its checkpoint says so).
pub fn is_finished(out: &Path) -> bool {
    resolve(out)
        .ok()
        .and_then(|d| load_json::<TrainState>(&d.join("train_state.json")).ok())
        .map(|s| s.finished)
        .unwrap_or(false)
}

/// The kind of a checkpoint, read from its `config.json`.
pub fn kind_of(path: &Path) -> Result<CheckpointKind> {
    let dir = resolve(path)?;
    let config: CheckpointConfig = load_json(&dir.join("config.json"))?;
    Ok(config.kind)
}

/// The ParamIds of a module in visiting order (stable for a given architecture).
struct Ids(Vec<u64>);
impl ModuleVisitor for Ids {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0.push(p.id.val());
    }
}

pub fn param_ids<M: Module>(m: &M) -> Vec<u64> {
    let mut v = Ids(Vec::new());
    m.visit(&mut v);
    v.0
}

/// Writes the model's weights to `path` (safetensors, Hugging Face names).
pub fn save_weights<M: Module>(model: &M, path: &Path) -> Result<()> {
    save_weights_filtered(model, path, None)
}

/// Which tensors (by path) a filtered save or load touches; None: all.
type TensorFilter = Option<fn(&str, &str) -> bool>;

/// Writes the weights `only` selects to `path`.
fn save_weights_filtered<M: Module>(model: &M, path: &Path, only: TensorFilter) -> Result<()> {
    // tensor names as Hugging Face writes them: `Lm`'s variant (`Gpt2`, `Llama`) is not a name
    let mut store = SafetensorsStore::from_file(path)
        .overwrite(true)
        .skip_enum_variants(true);
    if let Some(keep) = only {
        store = store.with_predicate(keep);
    }
    model
        .save_into(&mut store)
        .map_err(|e| anyhow!("writing {}: {e:?}", path.display()))
}

/// Loads weights into `model`; every tensor must be present with the right shape, and the file
/// must have no extra tensors, and no value may be NaN or ±inf.
pub fn load_weights<M: Module>(model: M, path: &Path) -> Result<M> {
    load_weights_filtered(model, path, None)
}

/// [`load_weights`] of the tensors `only` selects: those of the model must all be in the file,
/// and the file must hold no others.
fn load_weights_filtered<M: Module>(mut model: M, path: &Path, only: TensorFilter) -> Result<M> {
    if !path.is_file() {
        bail!("{} does not exist", path.display());
    }
    // partial + unvalidated: burn reports what is wrong in `res`, and the messages are ours
    let mut store = SafetensorsStore::from_file(path)
        .allow_partial(true)
        .validate(false)
        .skip_enum_variants(true);
    if let Some(keep) = only {
        store = store.with_predicate(keep);
    }
    let res = model.load_from(&mut store).map_err(|e| {
        anyhow!(
            "reading {}: not a readable safetensors file ({e:?}); the checkpoint is corrupt or \
             truncated",
            path.display()
        )
    })?;
    if !res.errors.is_empty() {
        let errs: Vec<String> = res.errors.iter().map(|e| e.to_string()).collect();
        bail!(
            "{}: {} (a checkpoint of another architecture, or a config.json that does not \
             match its weights?)",
            path.display(),
            errs.join("; ")
        );
    }
    // burn lists the model's tensors the filter left out as missing too
    let missing: Vec<&String> = res
        .missing
        .iter()
        .map(|(n, _)| n)
        .filter(|n| only.is_none_or(|keep| keep(n, "")))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: missing tensors {:?} (a checkpoint of another architecture?)",
            path.display(),
            missing
        );
    }
    if !res.unused.is_empty() {
        bail!(
            "{}: unexpected tensors {:?} (another architecture?)",
            path.display(),
            res.unused
        );
    }
    check_finite(&model).with_context(|| format!("{}: not loading it", path.display()))?;
    Ok(model)
}

/// What to write into a checkpoint.
pub struct SaveRequest<'a, M: Module> {
    pub dir: &'a Path,
    pub model: &'a M,
    pub config: &'a CheckpointConfig,
    pub tok: &'a Tok,
    pub optim: Option<&'a ModuleOptimizer>,
    pub state: &'a TrainState,
}

/// Test hook: `RLHF_CRASH_AT=<point>:<n>` aborts the process (no unwinding and no cleanup, as a
/// `kill -9` or a power cut would) at `point` of its `n`-th checkpoint write (from 1), so the
/// tests can check that a crash at any instant of a write leaves a checkpoint `--resume` and
/// `sample` read. Leave it unset in real runs.
pub const CRASH_ENV: &str = "RLHF_CRASH_AT";

/// The instants of a checkpoint write [`CRASH_ENV`] can name, in order: the new files written
/// into `ckpt.tmp/`, then fsynced, the old `ckpt/` moved to `ckpt.old/` (from the second write
/// on), `ckpt.tmp/` moved to `ckpt/`, and `ckpt.old/` removed.
pub const CRASH_POINTS: [&str; 5] = ["written", "synced", "moved-aside", "moved-in", "done"];

static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Aborts here when [`CRASH_ENV`] names this point of the `write`-th checkpoint write.
fn crash_point(point: &str, write: usize) {
    if let Ok(v) = std::env::var(CRASH_ENV) {
        if v == format!("{point}:{write}") {
            eprintln!("{CRASH_ENV}: aborting at {point} of checkpoint write {write}");
            std::process::abort();
        }
    }
}

/// Writes `dir/ckpt/` atomically, refusing weights that hold a NaN or ±inf.
///
/// Order: everything into `ckpt.tmp/` (each file fsynced), then `ckpt/` → `ckpt.old/`,
/// `ckpt.tmp/` → `ckpt/`, and only then `ckpt.old/` is removed. At every instant `ckpt/` or
/// `ckpt.old/` is complete, and [`resolve`] finds whichever exists.
pub fn save<M: Module>(req: SaveRequest<'_, M>) -> Result<PathBuf> {
    save_with(req, |_| Ok(()))
}

/// [`save`], with `extra` adding files (e.g. PPO's value model) to the new checkpoint
/// directory before it is moved into place, so they are part of the same commit.
pub fn save_with<M: Module>(
    req: SaveRequest<'_, M>,
    extra: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let final_dir = req.dir.join("ckpt");
    let tmp = req.dir.join("ckpt.tmp");
    let old = req.dir.join("ckpt.old");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("clearing {}", tmp.display()))?;
    }
    let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    write_parts(&tmp, &req)
        .and_then(|()| extra(&tmp))
        .with_context(|| {
            format!(
                "saving a checkpoint into {} (the previous one, if any, is kept)",
                req.dir.display()
            )
        })?;
    crash_point("written", write);
    sync_dir_files(&tmp)?;
    crash_point("synced", write);
    // each rename has an absent destination: Windows cannot rename a directory over another
    let swap = crate::util::fs::rename;
    if final_dir.exists() {
        // `ckpt/` is complete, so a leftover `ckpt.old/` is not needed any more
        if old.exists() {
            std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
        }
        swap(&final_dir, &old)?;
        crash_point("moved-aside", write);
    }
    swap(&tmp, &final_dir)?;
    crash_point("moved-in", write);
    if old.exists() {
        std::fs::remove_dir_all(&old).ok();
    }
    crash_point("done", write);
    Ok(final_dir)
}

/// Writes the files of one checkpoint (weights, config, tokenizer, optimizer, state) into
/// `dir`, which is created; `req.dir` only names the stage in errors. Refuses non-finite
/// weights. Not atomic by itself: `save_with` calls it inside the directory it renames into
/// place.
pub fn write_parts<M: Module>(dir: &Path, req: &SaveRequest<'_, M>) -> Result<()> {
    check_finite(req.model).with_context(|| {
        format!(
            "refusing to save a checkpoint into {} (the previous one is kept)",
            req.dir.display()
        )
    })?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let only = req.config.lora.as_ref().map(|_| lora::ADAPTER_FILTER);
    save_weights_filtered(req.model, &dir.join("model.safetensors"), only)?;
    save_json(req.config, &dir.join("config.json"))?;
    req.tok.save(&dir.join("tokenizer.json"))?;
    if let Some(o) = req.optim {
        let path = dir.join("optimizer.bpk");
        o.save(&path)
            .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
        save_json(&param_ids(req.model), &dir.join("param_ids.json"))?;
    }
    save_json(req.state, &dir.join("train_state.json"))
}

/// Flushes every file of `dir` (and its subdirectories), then the directories' own entries, to
/// disk, so a power loss right after the rename cannot leave a checkpoint whose files are empty
/// or missing.
fn sync_dir_files(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            sync_dir_files(&p)?;
        } else if p.is_file() {
            crate::util::fs::flush_file(&p)?;
        }
    }
    crate::util::fs::sync_dir(dir)
}

/// A language model loaded from a checkpoint.
pub struct Loaded {
    pub dir: PathBuf,
    pub model: Lm,
    pub config: CheckpointConfig,
    pub tok: Tok,
}

/// Loads a language-model checkpoint onto `device`, checking the tokenizer matches the model.
/// Reads a checkpoint's `config.json` and `tokenizer.json`, checking the config, its kind and
/// that the tokenizer matches the model's vocabulary.
fn load_header(
    path: &Path,
    kind: CheckpointKind,
    what: &str,
) -> Result<(PathBuf, CheckpointConfig, Tok)> {
    let dir = resolve(path)?;
    let config: CheckpointConfig = load_json(&dir.join("config.json"))?;
    config
        .model
        .validate()
        .with_context(|| format!("{}", dir.join("config.json").display()))?;
    if config.kind != kind {
        bail!(
            "{} is a '{}' checkpoint, not {what}",
            dir.display(),
            config.kind
        );
    }
    let tok = Tok::load(&dir.join("tokenizer.json"))?;
    if tok.vocab_size() != config.model.vocab_size {
        bail!(
            "{}: tokenizer has {} tokens but the model's vocabulary is {}",
            dir.display(),
            tok.vocab_size(),
            config.model.vocab_size
        );
    }
    Ok((dir, config, tok))
}

/// Loads a language-model checkpoint onto `device`, checking the tokenizer matches the model.
pub fn load_lm(path: &Path, device: &Device) -> Result<Loaded> {
    let (dir, config, tok) = load_header(path, CheckpointKind::Lm, "a language model")?;
    let weights = dir.join("model.safetensors");
    let model = match &config.lora {
        None => load_weights(Lm::zeroed(&config.model, device), &weights)?,
        Some(spec) => {
            let base_dir = lora::checked_base(spec, &dir)?;
            let base = load_lora_base(&base_dir, &dir, &config, device)?;
            lora::load_adapters(base.with_lora_shell(&spec.lora, device), &weights)?
        }
    };
    Ok(Loaded {
        dir,
        model,
        config,
        tok,
    })
}

/// A reward model loaded from a checkpoint.
pub struct LoadedRm {
    pub dir: PathBuf,
    pub model: crate::model::RewardModel,
    pub config: CheckpointConfig,
    pub tok: Tok,
}

/// Loads a reward-model checkpoint (kind `rm`), checking the tokenizer matches.
pub fn load_rm(path: &Path, device: &Device) -> Result<LoadedRm> {
    let (dir, config, tok) = load_header(
        path,
        CheckpointKind::Rm,
        "a reward model (train one with `rlhf rm`)",
    )?;
    let weights = dir.join("model.safetensors");
    let model = match &config.lora {
        None => load_weights(
            crate::model::RewardModel::zeroed(&config.model, device),
            &weights,
        )?,
        Some(spec) => {
            // the base of a value model's adapters may be a reward model (its head then
            // starts from the base's); a reward model's, the language model it started from
            let base_dir = lora::checked_base(spec, &dir)?;
            let mut shell = match kind_of(&base_dir)? {
                CheckpointKind::Rm => load_rm(&base_dir, device)?.model,
                CheckpointKind::Lm => crate::model::RewardModel::with_zero_head(
                    load_lora_base(&base_dir, &dir, &config, device)?,
                    device,
                ),
            };
            if shell.transformer.n_embd() != config.model.n_embd {
                bail!(
                    "{}: its LoRA base {} is another architecture",
                    dir.display(),
                    base_dir.display()
                );
            }
            shell.transformer = shell.transformer.with_lora_shell(&spec.lora, device);
            lora::load_adapters(shell, &weights)?
        }
    };
    Ok(LoadedRm {
        dir,
        model,
        config,
        tok,
    })
}

/// The language model in `base_dir`, the base ([`lora::checked_base`]) of the LoRA checkpoint
/// `dir` (whose config is `config`), once found to be of the same architecture.
fn load_lora_base(
    base_dir: &Path,
    dir: &Path,
    config: &CheckpointConfig,
    device: &Device,
) -> Result<Lm> {
    let base = load_lm(base_dir, device)
        .with_context(|| format!("{}: loading its LoRA base", dir.display()))?;
    if base.config.model != config.model {
        bail!(
            "{}: its LoRA base {} is another architecture ({:?}, not {:?})",
            dir.display(),
            base_dir.display(),
            base.config.model,
            config.model
        );
    }
    Ok(base.model)
}
