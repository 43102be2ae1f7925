//! `rlhf export-peft`: a LoRA checkpoint's adapters as a Hugging Face PEFT adapter directory
//! (`adapter_config.json`, `adapter_model.safetensors`; see [`super::peft`]), which
//! `PeftModel.from_pretrained(base, dir)` loads onto the base model exported by `rlhf
//! export-hf`.
//!
//! Language models only. A reward or value model's adapters come with a scalar head trained
//! from scratch and a normalisation bias; PEFT would need them as `modules_to_save` of a
//! `SEQ_CLS` adapter on a `*ForSequenceClassification` base, and the bias has no place in
//! either. Such a checkpoint is refused: `rlhf merge` then `rlhf export-hf` writes it as a full
//! `*ForSequenceClassification` model with the bias in its `config.json`.

use super::peft::{self, CONFIG_FILE, WEIGHTS_FILE};
use super::weights::{write_safetensors, HostTensor, Slot};
use crate::checkpoint::{self, CheckpointConfig, CheckpointKind};
use crate::config::lora::LoraBase;
use crate::config::{load_json, save_json, Family};
use crate::model::Lm;
use anyhow::{bail, Context, Result};
use burn::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// What an export wrote.
#[derive(Debug)]
pub struct PeftExportSummary {
    pub out: PathBuf,
    /// `target_modules`, sorted.
    pub target_modules: Vec<String>,
    /// Tensors in `adapter_model.safetensors` (two per adapted layer).
    pub tensors: usize,
    pub rank: usize,
}

/// Writes the adapters of the LoRA language-model checkpoint `ckpt` (a checkpoint or a stage
/// directory) as a PEFT adapter directory `out` (created if needed; files of the same names
/// are replaced).
pub fn export_peft(ckpt: &Path, out: &Path) -> Result<PeftExportSummary> {
    let dir = checkpoint::resolve(ckpt)?;
    let cc: CheckpointConfig = load_json(&dir.join("config.json"))?;
    let Some(spec) = cc.lora.clone() else {
        bail!(
            "{} is a full model, not a LoRA checkpoint: it has no adapters to export \
             (`rlhf export-hf` writes it as a Hugging Face model)",
            dir.display()
        );
    };
    if cc.kind == CheckpointKind::Rm {
        bail!(
            "{} is a reward (or value) model: its scalar head and normalisation bias have no \
             place in a PEFT causal-LM adapter, so only language models' adapters are exported \
             (`rlhf merge` then `rlhf export-hf` writes it as a full \
             *ForSequenceClassification model)",
            dir.display()
        );
    }
    let mut l = checkpoint::load_lm(&dir, &Device::flex())?;
    let (tensors, targets) = adapter_tensors(&mut l.model)?;
    if tensors.is_empty() {
        bail!(
            "{}: no layer of the model carries an adapter",
            dir.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    write_safetensors(&tensors, &out.join(WEIGHTS_FILE))?;
    let gpt2 = matches!(cc.model.family, Family::Gpt2);
    save_json(
        &adapter_config(&spec, &targets, gpt2),
        &out.join(CONFIG_FILE),
    )?;
    Ok(PeftExportSummary {
        out: out.to_path_buf(),
        target_modules: targets,
        tensors: tensors.len(),
        rank: spec.lora.rank,
    })
}

/// Tensors under their names in the file.
type Named = Vec<(String, HostTensor)>;

/// Every adapter's `lora_A.weight` (r, in) and `lora_B.weight` (out, r) under PEFT's names,
/// and the sorted `target_modules` that select the adapted layers.
fn adapter_tensors(m: &mut Lm) -> Result<(Named, Vec<String>)> {
    let mut tensors = Vec::new();
    let mut targets: Vec<String> = Vec::new();
    for s in peft::sites(m) {
        let (a_name, b_name) = (s.tensor("A"), s.tensor("B"));
        let Some(lora) = s.dense.lora.as_mut() else {
            continue;
        };
        let a = Slot::Matrix(&mut lora.lora_a).get()?; // (in, r)
        let b = Slot::Matrix(&mut lora.lora_b).get()?; // (r, out)
        tensors.push((a_name, a.transposed()?)); // (r, in)
        tensors.push((b_name, b.transposed()?)); // (out, r)
        if !targets.iter().any(|t| t == s.target) {
            targets.push(s.target.to_string());
        }
    }
    targets.sort();
    Ok((tensors, targets))
}

/// `adapter_config.json` as PEFT's `LoraConfig.save_pretrained` writes it, for an inference
/// adapter on the base `spec` names (its checkpoint directory: export that with `rlhf
/// export-hf` for `transformers` to load).
fn adapter_config(spec: &LoraBase, targets: &[String], gpt2: bool) -> Value {
    let l = &spec.lora;
    // PEFT's lora_alpha is an int; keep α whole when it is
    let alpha = if l.alpha.fract() == 0.0 && l.alpha.abs() < 1e15 {
        json!(l.alpha as i64)
    } else {
        json!(l.alpha)
    };
    json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": spec.base.to_string_lossy(),
        "revision": null,
        "inference_mode": true,
        "r": l.rank,
        "lora_alpha": alpha,
        "lora_dropout": l.dropout,
        "target_modules": targets,
        "exclude_modules": null,
        "fan_in_fan_out": gpt2,
        "bias": "none",
        "lora_bias": false,
        "use_rslora": false,
        "use_dora": false,
        "init_lora_weights": true,
        "modules_to_save": null,
        "layers_to_transform": null,
        "layers_pattern": null,
        "rank_pattern": {},
        "alpha_pattern": {},
    })
}
