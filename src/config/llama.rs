//! The Llama family's hyper-parameters beyond what every decoder shares (names follow Hugging
//! Face's `LlamaConfig`/`Qwen2Config`): grouped-query attention, the SwiGLU width, rotary
//! position embeddings with Llama 3's frequency scaling, Qwen2's q/k/v biases and whether the
//! unembedding is tied to the token embeddings. SmolLM2, Qwen2.5 and Llama 3.2 are all this one
//! architecture with different settings.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Llama-family settings; the shared ones (layers, width, heads, context, vocabulary, norm
/// epsilon) stay in [`super::ModelConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Key/value heads (`num_key_value_heads`); divides `n_head`. Equal to `n_head`: plain
    /// multi-head attention.
    pub n_kv_head: usize,
    /// Hidden width of the SwiGLU MLP (`intermediate_size`).
    pub intermediate_size: usize,
    /// Base of the rotary frequencies (`rope_theta`). Default 10000.
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    /// Llama 3's rotary frequency scaling (`rope_scaling` with `rope_type = "llama3"`); None:
    /// the frequencies as RoPE defines them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
    /// Biases on the q, k and v projections (Qwen2 has them). Default false.
    #[serde(default)]
    pub attention_bias: bool,
    /// The unembedding is the token embedding matrix (`tie_word_embeddings`). Default true.
    #[serde(default = "default_tied")]
    pub tie_word_embeddings: bool,
}

fn default_theta() -> f64 {
    10_000.0
}

fn default_tied() -> bool {
    true
}

/// Llama 3's rotary scaling: long wavelengths divided by `factor`, short ones kept, a smooth
/// blend in between (`transformers`' `_compute_llama3_parameters`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    /// Divides the frequencies of the longest wavelengths (8.0 in Llama 3.x).
    pub factor: f64,
    /// Wavelengths longer than `original_max_position_embeddings / low_freq_factor` are scaled.
    pub low_freq_factor: f64,
    /// Wavelengths shorter than `original_max_position_embeddings / high_freq_factor` are kept.
    pub high_freq_factor: f64,
    /// The context the model was pretrained with before its context was extended (8192).
    pub original_max_position_embeddings: usize,
}

impl LlamaConfig {
    /// A Llama of a GPT-2 preset's width `c` and `n_head` heads, for training from scratch:
    /// half as many key/value heads when `n_head` is even, an MLP of (8/3)·c rounded up to a
    /// multiple of 8 (Llama's choice, about the parameters of GPT-2's 4c GELU MLP), rope base
    /// 10000, no biases, tied embeddings (as the GPT-2 it stands in for).
    pub fn from_shape(c: usize, n_head: usize) -> Self {
        Self {
            n_kv_head: if n_head.is_multiple_of(2) {
                n_head / 2
            } else {
                n_head
            },
            intermediate_size: (8 * c).div_ceil(3).div_ceil(8) * 8,
            rope_theta: default_theta(),
            rope_scaling: None,
            attention_bias: false,
            tie_word_embeddings: true,
        }
    }

    /// Checks the settings against the number of query heads.
    pub fn validate(&self, n_head: usize) -> Result<()> {
        if self.n_kv_head == 0 || !n_head.is_multiple_of(self.n_kv_head) {
            bail!(
                "model config: n_kv_head ({}) must divide n_head ({n_head})",
                self.n_kv_head
            );
        }
        if self.intermediate_size == 0 {
            bail!("model config: intermediate_size must be positive");
        }
        if self.rope_theta <= 0.0 || !self.rope_theta.is_finite() {
            bail!(
                "model config: rope_theta must be positive, got {}",
                self.rope_theta
            );
        }
        if let Some(s) = &self.rope_scaling {
            let ok = s.factor > 0.0
                && s.low_freq_factor > 0.0
                && s.high_freq_factor > s.low_freq_factor
                && s.original_max_position_embeddings > 0;
            if !ok {
                bail!(
                    "model config: rope_scaling needs factor > 0, 0 < low_freq_factor < \
                     high_freq_factor and original_max_position_embeddings > 0: {s:?}"
                );
            }
        }
        Ok(())
    }

    /// The rotary inverse frequencies of one head of size `hs`: `theta^(-2i/hs)` for
    /// `i < hs/2`, then Llama 3's scaling when set. Computed in f64 and rounded once.
    pub fn inv_freq(&self, hs: usize) -> Vec<f32> {
        let half = hs / 2;
        (0..half)
            .map(|i| {
                let f = 1.0 / self.rope_theta.powf((2 * i) as f64 / hs as f64);
                match &self.rope_scaling {
                    Some(s) => s.scale(f),
                    None => f,
                }
            })
            .map(|f| f as f32)
            .collect()
    }
}

impl RopeScaling {
    /// One scaled frequency, as `transformers` computes it for `rope_type = "llama3"`.
    fn scale(&self, freq: f64) -> f64 {
        let old = self.original_max_position_embeddings as f64;
        let low_wavelen = old / self.low_freq_factor;
        let high_wavelen = old / self.high_freq_factor;
        let wavelen = 2.0 * std::f64::consts::PI / freq;
        if wavelen < high_wavelen {
            freq
        } else if wavelen > low_wavelen {
            freq / self.factor
        } else {
            let smooth = (old / wavelen - self.low_freq_factor)
                / (self.high_freq_factor - self.low_freq_factor);
            (1.0 - smooth) * freq / self.factor + smooth * freq
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(scaling: Option<RopeScaling>) -> LlamaConfig {
        LlamaConfig {
            n_kv_head: 2,
            intermediate_size: 64,
            rope_theta: 500_000.0,
            rope_scaling: scaling,
            attention_bias: false,
            tie_word_embeddings: true,
        }
    }

    /// Hand-checked: theta 500000, hs 64 → i = 0 gives 1, i = 16 gives 500000^(-0.5) =
    /// 1/707.1068 = 0.00141421.
    #[test]
    fn inv_freq_is_theta_to_the_minus_2i_over_hs() {
        let f = cfg(None).inv_freq(64);
        assert_eq!(f.len(), 32);
        assert_eq!(f[0], 1.0);
        assert!((f[16] - 0.001_414_213_6).abs() < 1e-9, "{}", f[16]);
    }

    /// Llama 3.2's scaling (factor 32, low 1, high 4, original 8192): wavelengths under
    /// 8192/4 = 2048 are kept (i = 0: wavelength 2π), over 8192 divided by 32, between them
    /// blended: i = 20 has freq 500000^(-40/64) = 2.74248e-4, wavelength 22911 > 8192 → /32 =
    /// 8.57026e-6; i = 14 has freq 500000^(-28/64) = 3.21145e-3, wavelength 1956.5 < 2048 →
    /// kept; i = 15: freq 500000^(-30/64) = 2.13112e-3, wavelength 2948.3, smooth =
    /// (8192/2948.3 − 1)/3 = 0.592849, scaled = (1 − 0.592849)·f/32 + 0.592849·f = 1.290548e-3.
    #[test]
    fn llama3_scaling_keeps_short_divides_long_and_blends_between() {
        let s = RopeScaling {
            factor: 32.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
        };
        let plain = cfg(None).inv_freq(64);
        let f = cfg(Some(s)).inv_freq(64);
        assert_eq!(f[0], plain[0]);
        assert_eq!(f[14], plain[14]);
        assert!((f[20] - plain[20] / 32.0).abs() < 1e-12);
        assert!((f[20] - 8.570_26e-6).abs() < 1e-10, "{}", f[20]);
        assert!((f[15] - 1.290_548e-3).abs() < 1e-8, "{}", f[15]);
    }

    #[test]
    fn kv_heads_must_divide_heads() {
        assert!(cfg(None).validate(4).is_ok());
        assert!(cfg(None).validate(3).is_err());
    }
}
