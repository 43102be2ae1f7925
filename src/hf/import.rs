//! `rlhf import-hf`: a Hugging Face GPT-2, Llama or Qwen2 directory → a checkpoint every stage
//! accepts. The Llama family's tensors are mapped by [`super::llama_weights`]; what follows
//! describes GPT-2's.
//!
//! Reads `config.json` (`model_type` must be `gpt2`), the weights from `model.safetensors` (or
//! the shards a `model.safetensors.index.json` lists, each holding exactly the tensors the index
//! gives it; F16, BF16 and F64 are widened to f32; pickle files are never read) and the
//! tokenizer from `tokenizer.json`, or else `vocab.json` + `merges.txt`. Tensor names may be bare
//! (`h.0.attn.c_attn.weight`, as `GPT2Model` and the `gpt2` hub files) or `transformer.`-prefixed
//! (`GPT2LMHeadModel`). Skipped: the `h.N.attn.bias` / `h.N.attn.masked_bias` mask buffers, and
//! `lm_head.weight` when it equals `wte.weight` (GPT-2 ties them; our head is `wte`). Any other
//! unknown tensor, a missing one, or a wrong shape is an error that names the tensor.
//! `GPT2ForSequenceClassification` with one label (`score.weight` `[1, C]`) becomes a reward model.

use super::hf_config::{self, HfModel};
use super::layout::{self, Role};
use super::llama_weights::set_llama;
use super::weights::{read_safetensors, set_gpt, HostTensor, Slot};
use crate::checkpoint::{self, CheckpointConfig, CheckpointKind};
use crate::config::{load_json, save_json, Family, ModelConfig};
use crate::data::tokenizer::Tok;
use crate::model::init::Init;
use crate::model::{Gpt, Llama, Lm, RewardModel};
use anyhow::{anyhow, bail, Context, Result};
use burn::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What an import produced.
#[derive(Debug)]
pub struct ImportSummary {
    pub out: PathBuf,
    /// A language model, or a reward model (`GPT2ForSequenceClassification`).
    pub kind: CheckpointKind,
    pub model: ModelConfig,
    /// Tensors read into the model.
    pub tensors: usize,
    /// Tensors in the file that were skipped on purpose (mask buffers, the tied head).
    pub skipped: Vec<String>,
}

/// The tensors of a file, sorted by what they are.
struct Sorted {
    trunk: BTreeMap<String, HostTensor>,
    score: Option<HostTensor>,
    skipped: Vec<String>,
}

/// Converts the Hugging Face directory `dir` (GPT-2, Llama or Qwen2) into a checkpoint
/// directory `out` (which must not exist yet, or be empty).
pub fn import_hf(dir: &Path, out: &Path) -> Result<ImportSummary> {
    let hf = hf_config::read(&dir.join("config.json"))?;
    let tok = read_tokenizer(dir)?;
    if tok.vocab_size() != hf.model.vocab_size {
        bail!(
            "{}: the tokenizer has {} tokens but config.json says vocab_size = {}",
            dir.display(),
            tok.vocab_size(),
            hf.model.vocab_size
        );
    }
    let raw = read_weights(dir)?;
    let device = Device::flex();
    let (model, tensors, skipped) = match &hf.model.family {
        Family::Gpt2 => {
            let sorted = sort(raw, &hf)?;
            check_layout(&sorted.trunk, &hf.model).with_context(|| format!("{}", dir.display()))?;
            let mut gpt = Gpt::zeroed(&hf.model, &device);
            set_gpt(&mut gpt, &sorted.trunk, &device)?;
            let n = sorted.trunk.len() + usize::from(sorted.score.is_some());
            let model = match sorted.score {
                Some(score) => {
                    let mut rm = RewardModel::with_zero_head(gpt.into(), &device);
                    Slot::Matrix(&mut rm.score.weight)
                        .set(&score.transposed()?, &device)
                        .context("tensor 'score.weight'")?;
                    Imported::Rm(rm)
                }
                None => Imported::Lm(Lm::Gpt2(gpt)),
            };
            (model, n, sorted.skipped)
        }
        Family::Llama(f) => {
            let mut m = Llama::build(&hf.model, f, &mut Init::Zeros, &device);
            let skipped =
                set_llama(&mut m, &raw, &device).with_context(|| format!("{}", dir.display()))?;
            (
                Imported::Lm(Lm::Llama(m)),
                raw.len() - skipped.len(),
                skipped,
            )
        }
    };
    let kind = write_imported(out, &model, &hf.model, hf.reward_bias, &tok, "import-hf")?;
    Ok(ImportSummary {
        out: out.to_path_buf(),
        kind,
        model: hf.model,
        tensors,
        skipped,
    })
}

/// Writes an imported model as a finished checkpoint `out` (absent or empty), atomically: its
/// weights, `config.json` (written by `stage`) and the tokenizer (with its chat template, when
/// the source had one).
pub(crate) fn write_imported(
    out: &Path,
    model: &Imported,
    cfg: &ModelConfig,
    reward_bias: Option<f64>,
    tok: &Tok,
    stage: &str,
) -> Result<CheckpointKind> {
    let kind = match model {
        Imported::Rm(_) => CheckpointKind::Rm,
        Imported::Lm(_) => CheckpointKind::Lm,
    };
    let config = CheckpointConfig {
        kind,
        stage: stage.into(),
        model: cfg.clone(),
        reward_bias,
        reward_gain: None,
        lora: None,
    };
    let tmp = crate::util::fs::tmp_path(out);
    prepare_out(out, &tmp)?;
    let weights = tmp.join("model.safetensors");
    match model {
        Imported::Rm(rm) => checkpoint::save_weights(rm, &weights)?,
        Imported::Lm(lm) => checkpoint::save_weights(lm, &weights)?,
    }
    save_json(&config, &tmp.join("config.json"))?;
    tok.save(&tmp.join("tokenizer.json"))?;
    crate::util::fs::commit(&tmp, out)?;
    Ok(kind)
}

/// What a source held.
pub(crate) enum Imported {
    Lm(Lm),
    Rm(RewardModel),
}

/// `out` must be absent or empty; `tmp` is cleared.
fn prepare_out(out: &Path, tmp: &Path) -> Result<()> {
    if out.exists() {
        let mut entries =
            std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} exists and is not empty: choose a new --out",
                out.display()
            );
        }
    }
    if tmp.exists() {
        std::fs::remove_dir_all(tmp).with_context(|| format!("clearing {}", tmp.display()))?;
    }
    std::fs::create_dir_all(tmp).with_context(|| format!("creating {}", tmp.display()))
}

/// `tokenizer.json`, or else `vocab.json` + `merges.txt`.
fn read_tokenizer(dir: &Path) -> Result<Tok> {
    let json = dir.join("tokenizer.json");
    if json.is_file() {
        return Tok::load(&json);
    }
    let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
    if vocab.is_file() && merges.is_file() {
        return Tok::from_vocab_merges_files(&vocab, &merges);
    }
    bail!(
        "{} has no tokenizer: expected tokenizer.json, or vocab.json and merges.txt",
        dir.display()
    )
}

/// All tensors of `model.safetensors`, or of the shards named by `model.safetensors.index.json`.
fn read_weights(dir: &Path) -> Result<BTreeMap<String, HostTensor>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return read_safetensors(&single);
    }
    let index = dir.join(INDEX);
    if index.is_file() {
        return read_shards(dir, &index);
    }
    let pickle = ["pytorch_model.bin", "model.bin"]
        .iter()
        .any(|f| dir.join(f).exists());
    if pickle {
        bail!(
            "{} has pytorch_model.bin but no model.safetensors: pickle files are not read; convert \
             with transformers: model.save_pretrained(dir, safe_serialization=True)",
            dir.display()
        );
    }
    bail!("{} has no model.safetensors", dir.display())
}

/// The index `save_pretrained` writes beside sharded weights.
const INDEX: &str = "model.safetensors.index.json";

/// All tensors of the shards `index` lists. Each shard must hold exactly the tensors the index
/// assigns to it: a shard that lost a tensor would otherwise surface as a missing GPT-2 tensor
/// with no file named, and one tensor in two shards would be read from whichever came last.
fn read_shards(dir: &Path, index: &Path) -> Result<BTreeMap<String, HostTensor>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let idx: Index = load_json(index)?;
    let mut listed: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (tensor, shard) in &idx.weight_map {
        listed.entry(shard).or_default().insert(tensor);
    }
    let mut all = BTreeMap::new();
    for (shard, want) in listed {
        // a plain file name: the index must not send the reader outside `dir`
        if Path::new(shard).file_name() != Some(std::ffi::OsStr::new(shard)) {
            bail!("{}: shard '{shard}' is not a file name", index.display());
        }
        let path = dir.join(shard);
        if !path.is_file() {
            bail!(
                "{} does not exist: {INDEX} lists {} in it",
                path.display(),
                some_of(&want)
            );
        }
        let tensors = read_safetensors(&path)?;
        let held: BTreeSet<&str> = tensors.keys().map(String::as_str).collect();
        let lacking: BTreeSet<&str> = want.difference(&held).copied().collect();
        if !lacking.is_empty() {
            bail!(
                "{} lacks {} that {INDEX} lists in it",
                path.display(),
                some_of(&lacking)
            );
        }
        let unlisted: BTreeSet<&str> = held.difference(&want).copied().collect();
        if !unlisted.is_empty() {
            bail!(
                "{} holds {} that {INDEX} does not list in it",
                path.display(),
                some_of(&unlisted)
            );
        }
        all.extend(tensors);
    }
    Ok(all)
}

/// "tensor 'a'", or "3 tensors ('a', 'b', ...)" for an error message.
fn some_of(names: &BTreeSet<&str>) -> String {
    let quoted: Vec<String> = names.iter().take(2).map(|n| format!("'{n}'")).collect();
    match names.len() {
        1 => format!("tensor {}", quoted.join("")),
        2 => format!("2 tensors ({})", quoted.join(", ")),
        n => format!("{n} tensors ({}, ...)", quoted.join(", ")),
    }
}

fn sort(raw: BTreeMap<String, HostTensor>, hf: &HfModel) -> Result<Sorted> {
    let (mut trunk, mut score, mut head, mut skipped) = (BTreeMap::new(), None, None, Vec::new());
    for (name, t) in raw {
        match layout::classify(&name) {
            Role::Buffer => skipped.push(name),
            Role::TiedHead => head = Some((name, t)),
            Role::Score if hf.reward_model => {
                let want = vec![1, hf.model.n_embd];
                if t.shape != want {
                    bail!(
                        "tensor 'score.weight' has shape {:?}, expected {want:?}",
                        t.shape
                    );
                }
                score = Some(t);
            }
            Role::Score => bail!(
                "unknown tensor 'score.weight': config.json's architectures do not name {}",
                hf_config::RM_ARCHITECTURE
            ),
            Role::Trunk(bare) => {
                if trunk.contains_key(&bare) {
                    bail!("tensor '{bare}' appears twice (with and without 'transformer.')");
                }
                trunk.insert(bare, t);
            }
        }
    }
    if let Some((name, t)) = head {
        if trunk.get("wte.weight").is_some_and(|w| *w != t) {
            bail!("'{name}' differs from 'wte.weight': only tied GPT-2 heads are supported");
        }
        skipped.push(name);
    }
    if hf.reward_model && score.is_none() {
        bail!(
            "missing tensor 'score.weight' (config.json names {})",
            hf_config::RM_ARCHITECTURE
        );
    }
    Ok(Sorted {
        trunk,
        score,
        skipped,
    })
}

/// Every GPT-2 tensor present with the shape `config.json` implies, and nothing else.
fn check_layout(trunk: &BTreeMap<String, HostTensor>, cfg: &ModelConfig) -> Result<()> {
    let want = layout::gpt2_tensors(cfg);
    let mut problems = Vec::new();
    for (name, shape) in &want {
        match trunk.get(name) {
            None => problems.push(format!("missing tensor '{name}' (shape {shape:?})")),
            Some(t) if t.shape != *shape => problems.push(format!(
                "tensor '{name}' has shape {:?}, expected {shape:?} from config.json",
                t.shape
            )),
            Some(_) => {}
        }
    }
    let known: BTreeSet<&str> = want.iter().map(|(n, _)| n.as_str()).collect();
    for name in trunk.keys().filter(|n| !known.contains(n.as_str())) {
        problems.push(format!(
            "unknown tensor '{name}' (not in GPT-2 with n_layer = {})",
            cfg.n_layer
        ));
    }
    match problems.len() {
        0 => Ok(()),
        n => Err(anyhow!(
            "{n} problem(s) with the weights: {}{}",
            problems
                .iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
            if n > 8 { "; ..." } else { "" }
        )),
    }
}
