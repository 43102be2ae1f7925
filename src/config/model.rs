//! Model configuration: the hyper-parameters every decoder shares (GPT-2's names), the family
//! (GPT-2, or the Llama family with its own settings), the bundled presets and command-line
//! overrides.
//!
//! The resolved configuration is saved as `config.json` into every checkpoint, so a checkpoint
//! is self-describing: nothing about its shape is guessed when it is loaded again.

use super::llama::LlamaConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which decoder a config describes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// GPT-2: learned positions, LayerNorm, GELU MLP, biases everywhere, tied unembedding.
    #[default]
    Gpt2,
    /// Llama (SmolLM2, Qwen2, Llama 3): rotary positions, RMSNorm, SwiGLU, grouped-query
    /// attention.
    Llama(LlamaConfig),
}

impl Family {
    pub fn is_gpt2(&self) -> bool {
        matches!(self, Family::Gpt2)
    }
}

/// Decoder hyper-parameters (the names follow Hugging Face's `GPT2Config`; for the Llama
/// family `n_embd` is `hidden_size`, `n_ctx` `max_position_embeddings` and
/// `layer_norm_epsilon` the RMSNorm's `rms_norm_eps`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The decoder family. Default GPT-2 (a config without the field is GPT-2's).
    #[serde(default, skip_serializing_if = "Family::is_gpt2")]
    pub family: Family,
    /// Number of transformer blocks. Default 4.
    pub n_layer: usize,
    /// Width of the residual stream (embedding size). Default 128.
    pub n_embd: usize,
    /// Number of attention heads; must divide `n_embd`. Default 4.
    pub n_head: usize,
    /// Context length in tokens (size of the learned position table). Default 128.
    pub n_ctx: usize,
    /// Vocabulary size; taken from the tokenizer when the model is created. Default 0 (unset).
    #[serde(default)]
    pub vocab_size: usize,
    /// Dropout probability on embeddings and residual branches, during training only. Default 0.1.
    #[serde(default)]
    pub dropout: f64,
    /// LayerNorm epsilon. Default 1e-5 (as GPT-2).
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
}

fn default_eps() -> f64 {
    1e-5
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            family: Family::Gpt2,
            n_layer: 4,
            n_embd: 128,
            n_head: 4,
            n_ctx: 128,
            vocab_size: 0,
            dropout: 0.1,
            layer_norm_epsilon: default_eps(),
        }
    }
}

/// The presets bundled in `assets/presets/`, compiled into the binary so it runs from anywhere.
const PRESETS: &[(&str, &str)] = &[
    ("tiny", include_str!("../../assets/presets/tiny.toml")),
    ("small", include_str!("../../assets/presets/small.toml")),
    ("base", include_str!("../../assets/presets/base.toml")),
    ("gpt2", include_str!("../../assets/presets/gpt2.toml")),
];

/// Names of the bundled presets, for `--help` texts and error messages.
pub fn preset_names() -> Vec<&'static str> {
    PRESETS.iter().map(|(n, _)| *n).collect()
}

/// The attention head sizes of the bundled presets, ascending, each once.
pub fn preset_head_sizes() -> Result<Vec<usize>> {
    let mut v = PRESETS
        .iter()
        .map(|(n, _)| ModelConfig::preset(n).map(|c| c.head_size()))
        .collect::<Result<Vec<_>>>()?;
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// A decoder family to train from scratch (`--arch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// GPT-2, as the presets are.
    Gpt2,
    /// The preset's shape as a Llama ([`LlamaConfig::from_shape`]).
    Llama,
}

/// Command-line overrides of single fields (`--n-layer 3` etc.); `None` keeps the preset's value.
#[derive(Debug, Clone, Default)]
pub struct ModelOverrides {
    pub arch: Option<Arch>,
    pub n_layer: Option<usize>,
    pub n_embd: Option<usize>,
    pub n_head: Option<usize>,
    pub n_ctx: Option<usize>,
    pub dropout: Option<f64>,
}

impl ModelConfig {
    /// Loads a preset by bundled name (`tiny`, `small`, `base`, `gpt2`) or from a TOML file path.
    pub fn preset(name_or_path: &str) -> Result<Self> {
        let text = match PRESETS.iter().find(|(n, _)| *n == name_or_path) {
            Some((_, t)) => t.to_string(),
            None => {
                let p = Path::new(name_or_path);
                if !p.exists() {
                    bail!(
                        "unknown preset '{name_or_path}': expected one of {} \
                         or a path to a .toml file",
                        preset_names().join(", ")
                    );
                }
                std::fs::read_to_string(p)
                    .with_context(|| format!("reading preset {}", p.display()))?
            }
        };
        let cfg: ModelConfig =
            toml::from_str(&text).with_context(|| format!("parsing preset '{name_or_path}'"))?;
        Ok(cfg)
    }

    /// Applies command-line overrides, then checks the result.
    pub fn with_overrides(mut self, o: &ModelOverrides) -> Result<Self> {
        if let Some(v) = o.n_layer {
            self.n_layer = v;
        }
        if let Some(v) = o.n_embd {
            self.n_embd = v;
        }
        if let Some(v) = o.n_head {
            self.n_head = v;
        }
        if let Some(v) = o.n_ctx {
            self.n_ctx = v;
        }
        if let Some(v) = o.dropout {
            self.dropout = v;
        }
        match o.arch {
            Some(Arch::Gpt2) => self.family = Family::Gpt2,
            Some(Arch::Llama) => {
                self.family = Family::Llama(LlamaConfig::from_shape(self.n_embd, self.n_head))
            }
            None => {}
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks the invariants the model relies on.
    pub fn validate(&self) -> Result<()> {
        if self.n_layer == 0 || self.n_embd == 0 || self.n_head == 0 || self.n_ctx == 0 {
            bail!("model config: n_layer, n_embd, n_head and n_ctx must be positive: {self:?}");
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            bail!(
                "model config: n_embd ({}) must be divisible by n_head ({})",
                self.n_embd,
                self.n_head
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!(
                "model config: dropout must be in [0, 1), got {}",
                self.dropout
            );
        }
        if let Family::Llama(l) = &self.family {
            l.validate(self.n_head)?;
        }
        Ok(())
    }

    /// Head size `hs = n_embd / n_head`.
    pub fn head_size(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Number of parameters (tied embeddings counted once).
    pub fn num_params(&self) -> usize {
        let (c, l) = (self.n_embd, self.n_layer);
        if let Family::Llama(f) = &self.family {
            let kv = c / self.n_head * f.n_kv_head; // width of k and of v
            let bias = if f.attention_bias { c + 2 * kv } else { 0 };
            let attn = c * c + 2 * c * kv + c * c + bias;
            let block = attn + 3 * c * f.intermediate_size + 2 * c;
            let head = if f.tie_word_embeddings {
                0
            } else {
                self.vocab_size * c
            };
            return self.vocab_size * c + l * block + c + head;
        }
        let emb = self.vocab_size * c + self.n_ctx * c;
        let block =
            2 * 2 * c + (c * 3 * c + 3 * c) + (c * c + c) + (c * 4 * c + 4 * c) + (4 * c * c + c);
        emb + l * block + 2 * c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_load_and_validate() {
        let t = ModelConfig::preset("tiny").unwrap();
        assert_eq!((t.n_layer, t.n_embd, t.n_head, t.n_ctx), (2, 64, 4, 64));
        let s = ModelConfig::preset("small").unwrap();
        assert_eq!((s.n_layer, s.n_embd, s.n_head, s.n_ctx), (4, 128, 4, 128));
        let b = ModelConfig::preset("base").unwrap();
        assert_eq!((b.n_layer, b.n_embd, b.n_head, b.n_ctx), (6, 384, 6, 256));
        let g = ModelConfig::preset("gpt2").unwrap();
        assert_eq!(
            (g.n_layer, g.n_embd, g.n_head, g.n_ctx, g.vocab_size),
            (12, 768, 12, 1024, 50257)
        );
        assert!(ModelConfig::preset("nope").is_err());
    }

    #[test]
    fn overrides_apply_and_are_checked() {
        let o = ModelOverrides {
            n_layer: Some(3),
            ..Default::default()
        };
        let c = ModelConfig::preset("tiny")
            .unwrap()
            .with_overrides(&o)
            .unwrap();
        assert_eq!(c.n_layer, 3);
        let bad = ModelOverrides {
            n_head: Some(5),
            ..Default::default()
        };
        assert!(ModelConfig::preset("tiny")
            .unwrap()
            .with_overrides(&bad)
            .is_err());
    }
}
