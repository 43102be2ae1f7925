//! Every configuration type of the crate, in one place: the model (GPT-2 hyper-parameters and
//! presets), a training stage's optimisation settings, PPO's and DPO's settings. Each field documents its
//! default and unit beside it; the resolved values are saved into every run directory
//! (`stage.json`, `pipeline.json`) and checkpoint (`config.json`).

pub mod dpo;
pub mod model;
pub mod ppo;
pub mod train;

pub use dpo::DpoConfig;
pub use model::{preset_names, ModelConfig, ModelOverrides};
pub use ppo::{Algo, PpoConfig, PpoDefaults};
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
