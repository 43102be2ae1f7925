//! LoRA checkpoints: `model.safetensors` holds the adapters (and a reward or value model's head)
//! only, under the names the full model gives them (`model.layers.0.self_attn.q_proj.lora.lora_a`,
//! `score.weight`); `config.json`'s `lora` names the base checkpoint and the SHA-256 of its
//! weights, and loading reads the base first and refuses it if its weights changed.

use super::load_weights_filtered;
use crate::config::lora::{LoraBase, LoraConfig};
use anyhow::{bail, Context, Result};
use burn::module::Module;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Whether the tensor at `path` is one a LoRA checkpoint holds: an adapter's, or the scalar head
/// of a reward or value model. (The second argument, burn's container path, is not read.)
pub fn is_adapter_tensor(path: &str, _container: &str) -> bool {
    path.starts_with("lora.") || path.contains(".lora.") || path.starts_with("score.")
}

/// [`is_adapter_tensor`] as the tensor filter of a save or load.
pub const ADAPTER_FILTER: fn(&str, &str) -> bool = is_adapter_tensor;

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The identity of the base checkpoint `base` that adapters of `lora` are trained on.
pub fn identify_base(base: &Path, lora: &LoraConfig) -> Result<LoraBase> {
    let dir = super::resolve(base)?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    Ok(LoraBase {
        lora: lora.clone(),
        base_sha256: sha256_file(&dir.join("model.safetensors"))?,
        base: dir,
    })
}

/// The base directory of the adapters in `dir`, once its weights are found to be the ones they
/// were trained on.
pub fn checked_base(spec: &LoraBase, dir: &Path) -> Result<PathBuf> {
    let base = super::resolve(&spec.base).with_context(|| {
        format!(
            "{}: the LoRA adapters' base model is gone (fold them into a full model with `rlhf \
             merge` while the base is at hand)",
            dir.display()
        )
    })?;
    let got = sha256_file(&base.join("model.safetensors"))?;
    if got != spec.base_sha256 {
        bail!(
            "{}: its LoRA adapters were trained on the model in {} whose weights had SHA-256 {}, \
             but the weights there now hash to {got}: another model is at that path, and the \
             adapters would not mean what they were trained to",
            dir.display(),
            base.display(),
            spec.base_sha256
        );
    }
    if super::load_json::<super::CheckpointConfig>(&base.join("config.json"))?
        .lora
        .is_some()
    {
        bail!(
            "{}: its base {} is itself a LoRA checkpoint (a base must be a full model)",
            dir.display(),
            base.display()
        );
    }
    Ok(base)
}

/// Loads the adapters (and head) of `path` into `model` (its base weights loaded, its adapters
/// the right shape): every adapter tensor of the model must be in the file and nothing else.
pub fn load_adapters<M: Module>(model: M, path: &Path) -> Result<M> {
    load_weights_filtered(model, path, Some(ADAPTER_FILTER))
}
