//! LoRA settings (`--lora-rank`, `--lora-alpha`, `--lora-targets`, `--lora-dropout`): which
//! linear layers carry a trained low-rank update while the base weights stay frozen. Saved in a
//! LoRA checkpoint's `config.json` with the identity of the base it was trained on.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A linear layer LoRA may adapt, named as in Llama (`q_proj` …); GPT-2's layers map onto them:
/// `c_attn` (its fused q, k, v: adapted when any of the three is chosen), `attn.c_proj` (o),
/// `mlp.c_fc` (up; GPT-2 has no gate), `mlp.c_proj` (down).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LoraTarget {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

/// The adapters of a model: rank, scale, dropout and the layers that carry one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// The rank r of every update. Default 16.
    pub rank: usize,
    /// α: the update is scaled by α / r (PEFT's `lora_alpha`). Default 32.
    pub alpha: f64,
    /// Dropout on each adapter's input while training (PEFT's `lora_dropout`). Default 0.
    pub dropout: f64,
    /// The layers adapted, in every block. Default q, k, v, o (the attention projections).
    pub targets: Vec<LoraTarget>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            rank: 16,
            alpha: 32.0,
            dropout: 0.0,
            targets: vec![LoraTarget::Q, LoraTarget::K, LoraTarget::V, LoraTarget::O],
        }
    }
}

impl LoraConfig {
    /// Checks the settings make sense before any work starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.rank >= 1, "--lora-rank must be at least 1");
        anyhow::ensure!(
            self.alpha > 0.0 && self.alpha.is_finite(),
            "--lora-alpha must be positive, got {}",
            self.alpha
        );
        anyhow::ensure!(
            (0.0..1.0).contains(&self.dropout),
            "--lora-dropout must be in [0, 1), got {}",
            self.dropout
        );
        anyhow::ensure!(!self.targets.is_empty(), "--lora-targets names no layer");
        Ok(())
    }

    /// Whether a layer serving `targets` (GPT-2's fused c_attn serves q, k and v) is adapted.
    pub fn adapts(&self, targets: &[LoraTarget]) -> bool {
        targets.iter().any(|t| self.targets.contains(t))
    }
}

/// What a LoRA checkpoint records beside its adapters: their settings and the base model they
/// were trained on, which loading reads first and refuses if its weights changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraBase {
    pub lora: LoraConfig,
    /// The base checkpoint's directory (absolute).
    pub base: PathBuf,
    /// SHA-256 of the base's `model.safetensors`, hex.
    pub base_sha256: String,
}
