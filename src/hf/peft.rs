//! Hugging Face PEFT's LoRA adapter format, shared by `rlhf export-peft` ([`super::peft_export`])
//! and `rlhf import-peft` ([`super::peft_import`]): a directory holding `adapter_config.json`
//! (PEFT's `LoraConfig`) and `adapter_model.safetensors`, which `PeftModel.from_pretrained(base,
//! dir)` loads onto the base `transformers` model.
//!
//! A tensor is named by the adapted module's path in the `*ForCausalLM` model under
//! `base_model.model.`: `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` (Llama),
//! `base_model.model.transformer.h.0.attn.c_attn.lora_A.weight` (GPT-2). `lora_A.weight` is
//! (r, in) and `lora_B.weight` (out, r), torch `nn.Linear` layouts: the transposes of our
//! `lora_a` (in, r) and `lora_b` (r, out). GPT-2's `Conv1D` base weight is stored `[in, out]`
//! (PEFT's `fan_in_fan_out`), but its adapters are `nn.Linear`s all the same. The update is
//! `(lora_alpha / r)·B·A` as ours is (`(α/r)·A·B` in our layout), or `lora_alpha / √r` with
//! `use_rslora`.

use crate::config::lora::LoraTarget;
use crate::model::dense::Dense;
use crate::model::Lm;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The adapter's settings file.
pub const CONFIG_FILE: &str = "adapter_config.json";
/// The adapter's tensors.
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
/// What PEFT puts before a module's path in the model (`PeftModel.base_model.model`).
pub const TENSOR_PREFIX: &str = "base_model.model.";

/// An adaptable linear layer of a model, under its Hugging Face name.
pub struct PeftSite<'a> {
    /// The module's path in the `*ForCausalLM` model: `model.layers.0.self_attn.q_proj`.
    pub module: String,
    /// The `target_modules` entry that selects this layer in every block (PEFT matches it as a
    /// suffix of the path): `q_proj`, GPT-2's `c_attn`, `attn.c_proj`, `c_fc`, `mlp.c_proj`.
    pub target: &'static str,
    /// The `--lora-targets` that adapt the layer (GPT-2's fused c_attn serves q, k and v).
    pub serves: &'static [LoraTarget],
    pub dense: &'a mut Dense,
}

impl PeftSite<'_> {
    /// The name of the adapter's `lora_A` (`"A"`) or `lora_B` (`"B"`) weight in the file.
    pub fn tensor(&self, ab: &str) -> String {
        format!("{TENSOR_PREFIX}{}.lora_{ab}.weight", self.module)
    }
}

/// Every linear layer LoRA may adapt ([`Lm::sites`]' walk), under PEFT's names.
pub fn sites(m: &mut Lm) -> Vec<PeftSite<'_>> {
    let gpt2 = m.as_gpt2().is_some();
    m.sites()
        .into_iter()
        .map(|s| PeftSite {
            module: match gpt2 {
                true => format!("transformer.h.{}.{}", s.block, s.layer),
                false => format!("model.layers.{}.{}", s.block, s.layer),
            },
            target: target(gpt2, s.layer),
            serves: s.serves,
            dense: s.dense,
        })
        .collect()
}

/// The `target_modules` entry of a layer (its path in the block): the last name, except that
/// GPT-2's two `c_proj`s keep their parent (bare `c_proj` would select both).
fn target(gpt2: bool, layer: &'static str) -> &'static str {
    match (gpt2, layer.rsplit_once('.')) {
        (true, Some((_, "c_proj"))) | (_, None) => layer,
        (_, Some((_, last))) => last,
    }
}

/// The fields of `adapter_config.json` that change what the adapter computes or where it goes
/// (PEFT writes some forty; the rest are training or quantisation settings). Absent fields take
/// PEFT's defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct AdapterConfig {
    /// `"LORA"` for a LoRA adapter.
    pub peft_type: String,
    /// `"CAUSAL_LM"`, `"SEQ_CLS"`, … (None: the bare base model).
    #[serde(default)]
    pub task_type: Option<String>,
    /// The rank.
    pub r: usize,
    /// α: the update is scaled by α / r (α / √r with `use_rslora`).
    pub lora_alpha: f64,
    #[serde(default)]
    pub lora_dropout: f64,
    /// A list of module-name suffixes, or one regular expression matched against whole names.
    #[serde(default)]
    pub target_modules: serde_json::Value,
    #[serde(default)]
    pub use_rslora: bool,
    /// DoRA (a learned magnitude vector beside A and B).
    #[serde(default)]
    pub use_dora: bool,
    /// `"none"`, `"all"` or `"lora_only"`: which biases the adapter trains.
    #[serde(default = "no_bias")]
    pub bias: String,
    /// A bias on lora_B.
    #[serde(default)]
    pub lora_bias: bool,
    /// Whole modules trained and saved beside the adapters (a classification head).
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
    /// Per-module ranks and alphas that override `r` and `lora_alpha`.
    #[serde(default)]
    pub rank_pattern: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub alpha_pattern: BTreeMap<String, serde_json::Value>,
    /// Only these blocks adapted.
    #[serde(default)]
    pub layers_to_transform: Option<serde_json::Value>,
}

fn no_bias() -> String {
    "none".into()
}
