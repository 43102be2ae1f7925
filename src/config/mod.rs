//! The configuration types the stages share: the model (GPT-2 hyper-parameters and presets) and
//! a training stage's optimisation settings. A stage with settings of its own keeps them in its
//! folder beside the code they shape (`stages::ppo::config`, `stages::dpo::config`). Each field
//! documents its default and unit beside it; the resolved values are saved into every run directory
//! (`stage.json`, `pipeline.json`) and checkpoint (`config.json`).

pub mod llama;
pub mod lora;
pub mod model;
pub mod train;

pub use llama::{LlamaConfig, RopeScaling};
pub use model::{preset_names, Arch, Family, ModelConfig, ModelOverrides};
pub use train::TrainConfig;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Writes any serializable config as pretty JSON, atomically.
pub fn save_json<T: Serialize>(value: &T, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    crate::util::fs::write_atomic(path, text.as_bytes())
}

/// Reads a JSON file into `T`, naming the file on error.
pub fn load_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}
