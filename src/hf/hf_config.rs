//! Hugging Face's GPT-2 `config.json` (`GPT2Config`): read into our [`ModelConfig`], refusing
//! what our model does not compute, and written back with every field `transformers` needs.
//! A Llama-family `config.json` is handed to [`super::llama_config`].

use crate::config::ModelConfig;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::Path;

/// Architectures of a GPT-2 language model; anything else with `score.weight` is a reward model.
pub const LM_ARCHITECTURE: &str = "GPT2LMHeadModel";
/// The reward model's architecture: trunk + `score` (`nn.Linear(C, 1, bias=False)`).
pub const RM_ARCHITECTURE: &str = "GPT2ForSequenceClassification";
/// Our key in an exported reward model's `config.json`: the bias added to `score`'s output.
pub const REWARD_BIAS_KEY: &str = "rlhf_reward_bias";

/// The fields of `GPT2Config` we read, with `GPT2Config`'s defaults.
#[derive(Debug, Deserialize)]
struct Gpt2Fields {
    #[serde(default = "d_vocab")]
    vocab_size: usize,
    #[serde(default = "d_positions")]
    n_positions: usize,
    #[serde(default = "d_embd")]
    n_embd: usize,
    #[serde(default = "d_layer")]
    n_layer: usize,
    #[serde(default = "d_head")]
    n_head: usize,
    n_inner: Option<usize>,
    #[serde(default = "d_act")]
    activation_function: String,
    #[serde(default = "d_pdrop")]
    resid_pdrop: f64,
    #[serde(default = "d_eps")]
    layer_norm_epsilon: f64,
    #[serde(default = "d_true")]
    scale_attn_weights: bool,
    #[serde(default)]
    scale_attn_by_inverse_layer_idx: bool,
    #[serde(default)]
    add_cross_attention: bool,
    #[serde(default = "d_true")]
    tie_word_embeddings: bool,
    #[serde(default)]
    architectures: Vec<String>,
    num_labels: Option<usize>,
    id2label: Option<serde_json::Map<String, Value>>,
    rlhf_reward_bias: Option<f64>,
}

fn d_vocab() -> usize {
    50257
}
fn d_positions() -> usize {
    1024
}
fn d_embd() -> usize {
    768
}
fn d_layer() -> usize {
    12
}
fn d_head() -> usize {
    12
}
fn d_act() -> String {
    "gelu_new".into()
}
fn d_pdrop() -> f64 {
    0.1
}
fn d_eps() -> f64 {
    1e-5
}
fn d_true() -> bool {
    true
}

/// A GPT-2 `config.json`, understood.
#[derive(Debug, Clone)]
pub struct HfModel {
    pub model: ModelConfig,
    /// True for `GPT2ForSequenceClassification` (imported as a reward model).
    pub reward_model: bool,
    /// The exported reward bias, when the file came from `rlhf export-hf`.
    pub reward_bias: Option<f64>,
}

/// Reads and checks `config.json`: `model_type` must be `gpt2` and the options must be ones our
/// GPT-2 computes (tanh GELU, 4C MLP, 1/sqrt(hs) attention scaling, tied embeddings).
pub fn read(path: &Path) -> Result<HfModel> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    parse(&v).with_context(|| format!("{}", path.display()))
}

/// The `model_type`s import reads.
const SUPPORTED: &str = "'gpt2', 'llama' (SmolLM2, Llama 3.x) and 'qwen2' (Qwen2, Qwen2.5)";

fn parse(v: &Value) -> Result<HfModel> {
    match v.get("model_type").and_then(Value::as_str) {
        Some("gpt2") => {}
        Some(t @ ("llama" | "qwen2")) => return super::llama_config::parse(v, t),
        Some(other) => bail!("model_type is '{other}': supported are {SUPPORTED}"),
        None => bail!("no model_type: supported are {SUPPORTED}"),
    }
    let f: Gpt2Fields = serde_json::from_value(v.clone()).context("reading GPT2Config fields")?;
    if !matches!(
        f.activation_function.as_str(),
        "gelu_new" | "gelu_pytorch_tanh"
    ) {
        bail!(
            "activation_function '{}' is not supported (the model computes tanh GELU, 'gelu_new')",
            f.activation_function
        );
    }
    if f.n_inner.is_some_and(|n| n != 4 * f.n_embd) {
        bail!(
            "n_inner {:?} is not supported (the MLP is 4 × n_embd)",
            f.n_inner
        );
    }
    let unsupported = [
        (!f.scale_attn_weights, "scale_attn_weights = false"),
        (
            f.scale_attn_by_inverse_layer_idx,
            "scale_attn_by_inverse_layer_idx = true",
        ),
        (f.add_cross_attention, "add_cross_attention = true"),
        (
            !f.tie_word_embeddings,
            "tie_word_embeddings = false (an untied lm_head)",
        ),
    ];
    if let Some((_, what)) = unsupported.iter().find(|(bad, _)| *bad) {
        bail!("{what} is not supported");
    }
    let reward_model = f.architectures.iter().any(|a| a == RM_ARCHITECTURE);
    if reward_model {
        let labels = f
            .num_labels
            .or(f.id2label.as_ref().map(|m| m.len()))
            .unwrap_or(2);
        if labels != 1 {
            bail!(
                "{RM_ARCHITECTURE} with {labels} labels: a reward model has one (num_labels = 1)"
            );
        }
    }
    let model = ModelConfig {
        family: crate::config::Family::Gpt2,
        n_layer: f.n_layer,
        n_embd: f.n_embd,
        n_head: f.n_head,
        n_ctx: f.n_positions,
        vocab_size: f.vocab_size,
        dropout: f.resid_pdrop,
        layer_norm_epsilon: f.layer_norm_epsilon,
    };
    model.validate()?;
    Ok(HfModel {
        model,
        reward_model,
        reward_bias: f.rlhf_reward_bias,
    })
}

/// The `config.json` of an exported model. `eot` is the id of `<|endoftext|>` (bos and eos, as
/// GPT-2). `reward_bias` is `Some` for a reward model: the architecture becomes
/// `GPT2ForSequenceClassification` with one label and the bias is stored under
/// [`REWARD_BIAS_KEY`]. Our model has no attention dropout, so `attn_pdrop` is 0.
pub fn to_json(m: &ModelConfig, eot: u32, reward_bias: Option<f64>) -> Value {
    let mut v = json!({
        "architectures": [if reward_bias.is_some() { RM_ARCHITECTURE } else { LM_ARCHITECTURE }],
        "model_type": "gpt2",
        "activation_function": "gelu_new",
        "vocab_size": m.vocab_size,
        "n_positions": m.n_ctx,
        "n_ctx": m.n_ctx,
        "n_embd": m.n_embd,
        "n_layer": m.n_layer,
        "n_head": m.n_head,
        "n_inner": null,
        "layer_norm_epsilon": m.layer_norm_epsilon,
        "resid_pdrop": m.dropout,
        "embd_pdrop": m.dropout,
        "attn_pdrop": 0.0,
        "initializer_range": 0.02,
        "scale_attn_weights": true,
        "scale_attn_by_inverse_layer_idx": false,
        "reorder_and_upcast_attn": false,
        "tie_word_embeddings": true,
        "use_cache": true,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "torch_dtype": "float32",
    });
    if let (Some(bias), Some(obj)) = (reward_bias, v.as_object_mut()) {
        obj.insert("id2label".into(), json!({"0": "LABEL_0"}));
        obj.insert("label2id".into(), json!({"LABEL_0": 0}));
        obj.insert(REWARD_BIAS_KEY.into(), json!(bias));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_then_parse_is_identity() {
        let mut m = ModelConfig::preset("tiny").unwrap();
        m.vocab_size = 300;
        let back = parse(&to_json(&m, 299, None)).unwrap();
        assert_eq!(back.model, m);
        assert!(!back.reward_model);
        let rm = parse(&to_json(&m, 299, Some(-0.25))).unwrap();
        assert!(rm.reward_model);
        assert_eq!(rm.reward_bias, Some(-0.25));
    }

    #[test]
    fn unsupported_options_are_refused() {
        let mut m = ModelConfig::preset("tiny").unwrap();
        m.vocab_size = 300;
        let base = to_json(&m, 299, None);
        let with = |k: &str, val: Value| {
            let mut v = base.clone();
            v[k] = val;
            format!("{:#}", parse(&v).unwrap_err())
        };
        assert!(with("activation_function", json!("gelu")).contains("activation_function"));
        assert!(with("n_inner", json!(10)).contains("n_inner"));
        assert!(with("tie_word_embeddings", json!(false)).contains("tie_word_embeddings"));
        assert!(with("model_type", json!("bert")).contains("'bert'"));
    }
}
