//! `rlhf merge`: a LoRA checkpoint's adapters folded into its base's weights (`W + (α/r)·A·B`),
//! written as a full checkpoint that no longer needs the base; a reward model keeps its head and
//! normalisation.

use crate::checkpoint::{self, CheckpointConfig, CheckpointKind};
use crate::config::save_json;
use anyhow::{bail, Context, Result};
use burn::prelude::*;
use std::path::Path;

/// Folds the adapters of the LoRA checkpoint `ckpt` into a full checkpoint `out` (absent or
/// empty); returns its kind.
pub fn merge(ckpt: &Path, out: &Path, device: &Device) -> Result<CheckpointKind> {
    let kind = checkpoint::kind_of(ckpt)?;
    let dir = checkpoint::resolve(ckpt)?;
    let config: CheckpointConfig = crate::config::load_json(&dir.join("config.json"))?;
    if config.lora.is_none() {
        bail!(
            "{} holds no LoRA adapters (a full model): there is nothing to merge",
            dir.display()
        );
    }
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        bail!(
            "{} exists and is not empty: choose a new --out",
            out.display()
        );
    }
    let tmp = crate::util::fs::tmp_path(out);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("clearing {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let weights = tmp.join("model.safetensors");
    let tok = match kind {
        CheckpointKind::Lm => {
            let l = checkpoint::load_lm(&dir, device)?;
            checkpoint::save_weights(&l.model.merged(), &weights)?;
            l.tok
        }
        CheckpointKind::Rm => {
            let mut r = checkpoint::load_rm(&dir, device)?;
            r.model.transformer = r.model.transformer.merged();
            checkpoint::save_weights(&r.model, &weights)?;
            r.tok
        }
    };
    let merged = CheckpointConfig {
        lora: None,
        ..config
    };
    save_json(&merged, &tmp.join("config.json"))?;
    tok.save(&tmp.join("tokenizer.json"))?;
    crate::util::fs::commit(&tmp, out)?;
    Ok(kind)
}
