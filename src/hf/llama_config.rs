//! Hugging Face's Llama-family `config.json` (`LlamaConfig`, `Qwen2Config`; SmolLM2 and Llama
//! 3.x are `llama`, Qwen2/2.5 `qwen2`): read into a [`ModelConfig`] of the Llama family,
//! refusing what our decoder does not compute, and written back as `transformers` reads it.

use super::hf_config::{HfModel, REWARD_BIAS_KEY};
use crate::config::{Family, LlamaConfig, ModelConfig, RopeScaling};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};

/// The architecture of an exported language model.
pub const LM_ARCHITECTURE: &str = "LlamaForCausalLM";
/// The architecture of an exported reward model: trunk + `score` (`nn.Linear(C, 1, bias=False)`).
pub const RM_ARCHITECTURE: &str = "LlamaForSequenceClassification";

/// The `config.json` fields we read, with `LlamaConfig`'s defaults where it has them.
#[derive(Debug, Deserialize)]
struct Fields {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(default = "d_act")]
    hidden_act: String,
    #[serde(default = "d_positions")]
    max_position_embeddings: usize,
    #[serde(default = "d_eps")]
    rms_norm_eps: f64,
    /// transformers 4.x keeps it here, 5.x in `rope_parameters`.
    rope_theta: Option<f64>,
    rope_scaling: Option<Value>,
    rope_parameters: Option<Value>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    use_sliding_window: bool,
}

fn d_act() -> String {
    "silu".into()
}
fn d_positions() -> usize {
    2048
}
fn d_eps() -> f64 {
    1e-6
}

/// Reads a `llama` or `qwen2` config (`model_type` already checked by the caller).
pub fn parse(v: &Value, model_type: &str) -> Result<HfModel> {
    let f: Fields = serde_json::from_value(v.clone())
        .with_context(|| format!("reading {model_type} fields"))?;
    if f.hidden_act != "silu" {
        bail!(
            "hidden_act '{}' is not supported (the MLP computes SwiGLU with silu)",
            f.hidden_act
        );
    }
    if f.mlp_bias {
        bail!("mlp_bias = true is not supported");
    }
    if f.use_sliding_window {
        bail!("use_sliding_window = true is not supported (attention is over the whole context)");
    }
    if f.num_attention_heads == 0 {
        bail!("num_attention_heads must be positive");
    }
    let hs = f.hidden_size / f.num_attention_heads;
    if f.head_dim.is_some_and(|d| d != hs) {
        bail!(
            "head_dim {:?} is not hidden_size / num_attention_heads = {hs}: not supported",
            f.head_dim
        );
    }
    let (rope_theta, rope_scaling) = rope(&f)?;
    let llama = LlamaConfig {
        n_kv_head: f.num_key_value_heads.unwrap_or(f.num_attention_heads),
        intermediate_size: f.intermediate_size,
        rope_theta,
        rope_scaling,
        // Qwen2 always has q/k/v biases and no flag for them
        attention_bias: f.attention_bias || model_type == "qwen2",
        tie_word_embeddings: f.tie_word_embeddings,
    };
    let model = ModelConfig {
        family: Family::Llama(llama),
        n_layer: f.num_hidden_layers,
        n_embd: f.hidden_size,
        n_head: f.num_attention_heads,
        n_ctx: f.max_position_embeddings,
        vocab_size: f.vocab_size,
        dropout: 0.0,
        layer_norm_epsilon: f.rms_norm_eps,
    };
    model.validate()?;
    Ok(HfModel {
        model,
        reward_model: false,
        reward_bias: None,
    })
}

/// The rotary base and scaling, from `rope_parameters` (transformers 5) or `rope_theta` +
/// `rope_scaling` (4.x). Types other than the default and `llama3` are refused.
fn rope(f: &Fields) -> Result<(f64, Option<RopeScaling>)> {
    let params = f.rope_parameters.as_ref().or(f.rope_scaling.as_ref());
    let theta = f
        .rope_parameters
        .as_ref()
        .and_then(|p| p.get("rope_theta"))
        .and_then(Value::as_f64)
        .or(f.rope_theta)
        .unwrap_or(10_000.0);
    let Some(p) = params.filter(|p| !p.is_null()) else {
        return Ok((theta, None));
    };
    let kind = p
        .get("rope_type")
        .or_else(|| p.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    match kind {
        "default" => Ok((theta, None)),
        "llama3" => {
            let scaling: RopeScaling =
                serde_json::from_value(p.clone()).context("reading the llama3 rope scaling")?;
            Ok((theta, Some(scaling)))
        }
        other => bail!("rope type '{other}' is not supported (only the default and llama3)"),
    }
}

/// The `config.json` of an exported Llama-family model (`LlamaForCausalLM`; a Qwen2 model is
/// written as a Llama with `attention_bias`, which `transformers` computes the same way).
/// `reward_bias` is `Some` for a reward model (`LlamaForSequenceClassification`, one label, the
/// bias under [`REWARD_BIAS_KEY`]).
pub fn to_json(
    m: &ModelConfig,
    f: &LlamaConfig,
    bos: Option<u32>,
    eos: u32,
    reward_bias: Option<f64>,
) -> Value {
    let mut rope = json!({"rope_theta": f.rope_theta, "rope_type": "default"});
    if let Some(s) = &f.rope_scaling {
        rope = json!({
            "rope_theta": f.rope_theta,
            "rope_type": "llama3",
            "factor": s.factor,
            "low_freq_factor": s.low_freq_factor,
            "high_freq_factor": s.high_freq_factor,
            "original_max_position_embeddings": s.original_max_position_embeddings,
        });
    }
    let arch = if reward_bias.is_some() {
        RM_ARCHITECTURE
    } else {
        LM_ARCHITECTURE
    };
    let mut v = json!({
        "architectures": [arch],
        "model_type": "llama",
        "vocab_size": m.vocab_size,
        "hidden_size": m.n_embd,
        "intermediate_size": f.intermediate_size,
        "num_hidden_layers": m.n_layer,
        "num_attention_heads": m.n_head,
        "num_key_value_heads": f.n_kv_head,
        "head_dim": m.head_size(),
        "hidden_act": "silu",
        "max_position_embeddings": m.n_ctx,
        "rms_norm_eps": m.layer_norm_epsilon,
        "rope_theta": f.rope_theta,
        "rope_parameters": rope,
        "rope_scaling": f.rope_scaling.as_ref().map(|_| rope.clone()),
        "attention_bias": f.attention_bias,
        "mlp_bias": false,
        "tie_word_embeddings": f.tie_word_embeddings,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "torch_dtype": "float32",
    });
    if let (Some(bias), Some(obj)) = (reward_bias, v.as_object_mut()) {
        obj.insert("num_labels".into(), json!(1));
        obj.insert("id2label".into(), json!({"0": "LABEL_0"}));
        obj.insert("label2id".into(), json!({"LABEL_0": 0}));
        obj.insert("pad_token_id".into(), json!(eos));
        obj.insert(REWARD_BIAS_KEY.into(), json!(bias));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> ModelConfig {
        ModelConfig {
            family: Family::Llama(LlamaConfig {
                n_kv_head: 2,
                intermediate_size: 48,
                rope_theta: 500_000.0,
                rope_scaling: Some(RopeScaling {
                    factor: 32.0,
                    low_freq_factor: 1.0,
                    high_freq_factor: 4.0,
                    original_max_position_embeddings: 8192,
                }),
                attention_bias: false,
                tie_word_embeddings: true,
            }),
            n_layer: 2,
            n_embd: 32,
            n_head: 4,
            n_ctx: 64,
            vocab_size: 512,
            dropout: 0.0,
            layer_norm_epsilon: 1e-5,
        }
    }

    #[test]
    fn export_then_parse_is_identity() {
        let m = small();
        let Family::Llama(f) = &m.family else {
            unreachable!()
        };
        let back = parse(&to_json(&m, f, Some(1), 2, None), "llama").unwrap();
        assert_eq!(back.model, m);
    }

    #[test]
    fn unsupported_options_are_refused() {
        let m = small();
        let Family::Llama(f) = &m.family else {
            unreachable!()
        };
        let base = to_json(&m, f, Some(1), 2, None);
        let with = |k: &str, val: Value| {
            let mut v = base.clone();
            v[k] = val;
            v["rope_scaling"] = Value::Null;
            format!("{:#}", parse(&v, "llama").unwrap_err())
        };
        assert!(with("hidden_act", json!("gelu")).contains("hidden_act"));
        assert!(with("mlp_bias", json!(true)).contains("mlp_bias"));
        assert!(with("head_dim", json!(16)).contains("head_dim"));
        assert!(with("num_key_value_heads", json!(3)).contains("n_kv_head"));
        assert!(with(
            "rope_parameters",
            json!({"rope_type": "yarn", "factor": 2.0})
        )
        .contains("'yarn'"));
    }
}
