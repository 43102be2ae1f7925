//! `rlhf import-peft`: a Hugging Face PEFT LoRA adapter (see [`super::peft`]) on a base
//! checkpoint, as a LoRA checkpoint of ours: the base named by path and the SHA-256 of its
//! weights, the adapters in our layout. Every stage, `sample`, `merge` and `export-peft` then
//! take it as they take adapters trained here.
//!
//! Read: a `CAUSAL_LM` (or task-less) LoRA adapter with one rank and α (`use_rslora` folded
//! into α), no bias training, no DoRA and no `modules_to_save`, whose adapted layers are the
//! same in every block (ours are: `--lora-targets` names layers, not blocks). Anything else is
//! refused by name rather than read into something else.

use super::peft::{self, AdapterConfig, CONFIG_FILE, WEIGHTS_FILE};
use super::weights::{read_safetensors, HostTensor, Slot};
use crate::checkpoint::{self, CheckpointConfig, CheckpointKind, SaveRequest, TrainState};
use crate::config::load_json;
use crate::config::lora::{LoraConfig, LoraTarget};
use crate::model::Lm;
use anyhow::{bail, ensure, Context, Result};
use burn::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What an import wrote.
#[derive(Debug)]
pub struct PeftImportSummary {
    pub out: PathBuf,
    /// The adapters' settings, as `config.json` records them.
    pub lora: LoraConfig,
    /// Adapted layers (all blocks).
    pub layers: usize,
}

/// Reads the PEFT adapter directory `adapter` onto the full language-model checkpoint `base`
/// and writes a LoRA checkpoint `out` (absent or empty).
pub fn import_peft(adapter: &Path, base: &Path, out: &Path) -> Result<PeftImportSummary> {
    let ctx = || format!("reading the PEFT adapter {}", adapter.display());
    let cfg: AdapterConfig = load_json(&adapter.join(CONFIG_FILE)).with_context(ctx)?;
    check_supported(&cfg).with_context(ctx)?;
    let weights = adapter.join(WEIGHTS_FILE);
    if !weights.is_file() && adapter.join("adapter_model.bin").is_file() {
        bail!(
            "{}: only {WEIGHTS_FILE} is read, not adapter_model.bin (a pickle); save the \
             adapter with safe_serialization=True",
            adapter.display()
        );
    }
    let mut tensors = read_safetensors(&weights)?;
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        bail!(
            "{} exists and is not empty: choose a new --out",
            out.display()
        );
    }
    let base_dir = checkpoint::resolve(base)?;
    let base_cc: CheckpointConfig = load_json(&base_dir.join("config.json"))?;
    if base_cc.lora.is_some() {
        bail!(
            "{}: a LoRA checkpoint cannot be a base (fold its adapters in with `rlhf merge`)",
            base_dir.display()
        );
    }
    let device = Device::flex();
    let checkpoint::Loaded {
        mut model,
        config: base_config,
        tok,
        ..
    } = checkpoint::load_lm(&base_dir, &device)?;
    let lora = lora_config(&cfg, &mut model, &tensors)
        .with_context(|| format!("{}: on the base {}", weights.display(), base_dir.display()))?;
    let mut model = model.with_lora_shell(&lora, &device);
    let layers = fill_adapters(&mut model, &mut tensors, &device)
        .with_context(|| format!("reading {}", weights.display()))?;
    let config = CheckpointConfig {
        kind: CheckpointKind::Lm,
        stage: "import-peft".into(),
        model: base_config.model,
        reward_bias: None,
        reward_gain: None,
        lora: Some(checkpoint::lora::identify_base(&base_dir, &lora)?),
    };
    save(out, &model, &config, &tok)?;
    Ok(PeftImportSummary {
        out: out.to_path_buf(),
        lora,
        layers,
    })
}

/// Refuses the adapter settings whose update ours cannot represent.
fn check_supported(c: &AdapterConfig) -> Result<()> {
    ensure!(
        c.peft_type == "LORA",
        "peft_type is {}, not LORA: only LoRA adapters are read",
        c.peft_type
    );
    if let Some(t) = c.task_type.as_deref().filter(|t| *t != "CAUSAL_LM") {
        bail!("task_type is {t}: only CAUSAL_LM adapters are read (a language model's)");
    }
    ensure!(
        c.bias == "none" && !c.lora_bias,
        "the adapter trains biases (bias \"{}\", lora_bias {}): ours have none",
        c.bias,
        c.lora_bias
    );
    ensure!(
        !c.use_dora,
        "a DoRA adapter (use_dora): its magnitude vector has no place here"
    );
    ensure!(
        c.modules_to_save.as_ref().is_none_or(|m| m.is_empty()),
        "modules_to_save {:?}: whole trained modules beside the adapters are not read",
        c.modules_to_save
    );
    ensure!(
        c.rank_pattern.is_empty() && c.alpha_pattern.is_empty(),
        "rank_pattern/alpha_pattern give layers their own rank or α: ours share one"
    );
    ensure!(
        c.layers_to_transform.as_ref().is_none_or(|v| v.is_null()),
        "layers_to_transform adapts some blocks only: ours adapt the same layers in every block"
    );
    Ok(())
}

/// Our settings for the adapters in `tensors` on `model`: PEFT's rank, α (α·√r for
/// `use_rslora`, whose scale is α/√r) and dropout, and the targets of the layers that have
/// tensors. Fails when those layers are not the same in every block.
fn lora_config(
    c: &AdapterConfig,
    model: &mut Lm,
    tensors: &BTreeMap<String, HostTensor>,
) -> Result<LoraConfig> {
    let mut targets: Vec<LoraTarget> = Vec::new();
    let sites = peft::sites(model);
    for s in &sites {
        if tensors.contains_key(&s.tensor("A")) || tensors.contains_key(&s.tensor("B")) {
            targets.extend(s.serves);
        }
    }
    targets.sort();
    targets.dedup();
    if targets.is_empty() {
        bail!(
            "no tensor names an adapter of a linear layer of this model (the first is '{}'): \
             is the base the one the adapter was trained on?",
            tensors.keys().next().map_or("", |k| k.as_str())
        );
    }
    let alpha = if c.use_rslora {
        c.lora_alpha * (c.r as f64).sqrt()
    } else {
        c.lora_alpha
    };
    let lora = LoraConfig {
        rank: c.r,
        alpha,
        dropout: c.lora_dropout,
        targets,
    };
    lora.validate()?;
    for s in &sites {
        if lora.adapts(s.serves) && !tensors.contains_key(&s.tensor("A")) {
            bail!(
                "no adapter for {} although the same layer of another block has one (ours \
                 adapt the same layers in every block)",
                s.module
            );
        }
    }
    Ok(lora)
}

/// Moves each adapted layer's `lora_A.weight` (r, in) and `lora_B.weight` (out, r) out of
/// `tensors` into its adapter, transposed; returns the number of layers. Every tensor must
/// have been used.
fn fill_adapters(
    model: &mut Lm,
    tensors: &mut BTreeMap<String, HostTensor>,
    device: &Device,
) -> Result<usize> {
    let mut layers = 0;
    for s in peft::sites(model) {
        let (a_name, b_name) = (s.tensor("A"), s.tensor("B"));
        let Some(lora) = s.dense.lora.as_mut() else {
            continue;
        };
        for (name, slot) in [(a_name, &mut lora.lora_a), (b_name, &mut lora.lora_b)] {
            let t = tensors
                .remove(&name)
                .with_context(|| format!("missing tensor '{name}'"))?;
            Slot::Matrix(slot)
                .set(&t.transposed()?, device)
                .with_context(|| format!("tensor '{name}' {:?} (torch's layout)", t.shape))?;
        }
        layers += 1;
    }
    if let Some(name) = tensors.keys().next() {
        bail!(
            "tensor '{name}' (and {} more) is not the lora_A/lora_B weight of a linear layer \
             of this model",
            tensors.len() - 1
        );
    }
    Ok(layers)
}

/// Writes the checkpoint into `out` through a temporary sibling directory.
fn save(
    out: &Path,
    model: &Lm,
    config: &CheckpointConfig,
    tok: &crate::data::tokenizer::Tok,
) -> Result<()> {
    let tmp = crate::util::fs::tmp_path(out);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("clearing {}", tmp.display()))?;
    }
    let state = TrainState {
        step: 0,
        rng: crate::util::rng::Rng::new(0),
        finished: true,
        extra: serde_json::Value::Null,
    };
    let req = SaveRequest {
        dir: out,
        model,
        config,
        tok,
        optim: None,
        state: &state,
    };
    checkpoint::write_parts(&tmp, &req)?;
    crate::util::fs::commit(&tmp, out)
}
