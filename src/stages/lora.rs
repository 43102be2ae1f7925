//! How a training stage takes up LoRA (`--lora-rank` …): fresh adapters on a frozen full model,
//! or a LoRA checkpoint's adapters trained on.

use crate::checkpoint::lora::identify_base;
use crate::checkpoint::CheckpointConfig;
use crate::config::lora::{LoraBase, LoraConfig};
use crate::model::{InitRng, Lm};
use anyhow::{bail, Result};
use burn::prelude::*;
use std::path::Path;

/// The model a stage trains, starting from `init` (loaded from the checkpoint `dir` whose config
/// is `config`), and the LoRA record its checkpoints carry (see [`plan`]).
pub fn adapt(
    init: Lm,
    (dir, config): (&Path, &CheckpointConfig),
    want: Option<&LoraConfig>,
    seed: u64,
    device: &Device,
) -> Result<(Lm, Option<LoraBase>)> {
    let record = plan((dir, config), want)?;
    let model = apply(init, config, record.as_ref(), seed, device);
    Ok((model, record))
}

/// The LoRA record of a stage starting from the checkpoint `dir` (config `config`):
/// - a full model, no `want`: none, every weight trains;
/// - a full model and `want`: fresh adapters on the frozen model, which is their base;
/// - a LoRA checkpoint: its own (its adapters train on, on its base; `want`, if given, must be
///   its settings: other adapters need the old ones folded in first, `rlhf merge`).
pub fn plan(
    (dir, config): (&Path, &CheckpointConfig),
    want: Option<&LoraConfig>,
) -> Result<Option<LoraBase>> {
    match (&config.lora, want) {
        (None, None) => Ok(None),
        (None, Some(cfg)) => {
            cfg.validate()?;
            Ok(Some(identify_base(dir, cfg)?))
        }
        (Some(spec), want) => {
            if let Some(cfg) = want.filter(|c| **c != spec.lora) {
                bail!(
                    "{} already carries LoRA adapters ({:?}), and the --lora-* flags ask for \
                     others ({cfg:?}): leave the flags out to train its adapters on, or fold them \
                     into the weights with `rlhf merge` and start new ones from that",
                    dir.display(),
                    spec.lora
                );
            }
            Ok(Some(spec.clone()))
        }
    }
}

/// `init` (loaded with `config`) as [`plan`]'s `record` has it train: with fresh adapters drawn
/// from `seed` where a full model starts LoRA, as it is otherwise.
pub fn apply(
    init: Lm,
    config: &CheckpointConfig,
    record: Option<&LoraBase>,
    seed: u64,
    device: &Device,
) -> Lm {
    match (&config.lora, record) {
        (None, Some(r)) => init.with_lora(&r.lora, &mut InitRng::new(seed ^ 0x10_4a), device),
        _ => init,
    }
}
