//! `rlhf export-hf`: a checkpoint → a directory `transformers` loads as it is:
//! `GPT2LMHeadModel.from_pretrained(dir)` (or `GPT2ForSequenceClassification` for a reward
//! model; `LlamaForCausalLM` / `LlamaForSequenceClassification` for the Llama family) and
//! `AutoTokenizer.from_pretrained(dir)`. What follows describes GPT-2's files; a Llama's
//! tensors are named and laid out as `LlamaForCausalLM.save_pretrained` writes them.
//!
//! Files: `config.json`, `generation_config.json`, `model.safetensors` (f32, the names
//! `GPT2LMHeadModel.save_pretrained` writes: `transformer.`-prefixed trunk, `lm_head` left out
//! because it is tied to `wte`), `tokenizer.json`, `vocab.json` + `merges.txt`,
//! `tokenizer_config.json`, `special_tokens_map.json`. A reward model adds `score.weight`
//! `[1, C]` (torch `nn.Linear(C, 1, bias=False)` is `[out, in]`) and its normalisation bias as
//! `rlhf_reward_bias` in `config.json`: reward = `score(h_last) + rlhf_reward_bias`, read at the
//! closing `<|endoftext|>` as `rlhf rm` scores.

use super::llama_weights::llama_tensors;
use super::weights::{gpt_tensors, write_safetensors, HostTensor, Slot};
use super::{hf_config, llama_config};
use crate::checkpoint::{self, CheckpointConfig, CheckpointKind};
use crate::config::{load_json, save_json, Family, ModelConfig};
use crate::data::tokenizer::{Tok, EOT};
use crate::model::Lm;
use anyhow::{anyhow, Context, Result};
use burn::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use tokenizers::Model;

/// What an export wrote.
#[derive(Debug)]
pub struct ExportSummary {
    pub out: PathBuf,
    /// `GPT2LMHeadModel` or `GPT2ForSequenceClassification`.
    pub architecture: &'static str,
    /// Tensors in `model.safetensors`.
    pub tensors: usize,
}

/// Writes the checkpoint `ckpt` (a checkpoint or a stage directory) as a Hugging Face GPT-2
/// directory `out` (created if needed; files of the same names are replaced).
pub fn export_hf(ckpt: &Path, out: &Path) -> Result<ExportSummary> {
    let dir = checkpoint::resolve(ckpt)?;
    let cc: CheckpointConfig = load_json(&dir.join("config.json"))?;
    let device = Device::flex();
    let (tensors, tok, model, bias) = match cc.kind {
        CheckpointKind::Lm => {
            let mut l = checkpoint::load_lm(&dir, &device)?;
            // a LoRA checkpoint exports as the model it computes: adapters folded in
            l.model = l.model.merged();
            let t = lm_tensors(&mut l.model)?;
            (t, l.tok, l.config.model, None)
        }
        CheckpointKind::Rm => {
            let mut l = checkpoint::load_rm(&dir, &device)?;
            l.model.transformer = l.model.transformer.merged();
            let mut t = trunk_tensors(&mut l.model.transformer)?;
            let score = Slot::Matrix(&mut l.model.score.weight).get()?; // (C, 1)
            t.push(("score.weight".into(), score.transposed()?)); // (1, C)
            (
                t,
                l.tok,
                l.config.model,
                Some(l.config.reward_bias.unwrap_or(0.0)),
            )
        }
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    write_safetensors(&tensors, &out.join("model.safetensors"))?;
    let config = match &model.family {
        Family::Gpt2 => hf_config::to_json(&model, tok.eot, bias),
        Family::Llama(f) => llama_config::to_json(&model, f, None, tok.eot, bias),
    };
    save_json(&config, &out.join("config.json"))?;
    let generation = json!({
        "_from_model_config": true,
        "bos_token_id": tok.eot,
        "eos_token_id": tok.eot,
    });
    save_json(&generation, &out.join("generation_config.json"))?;
    write_tokenizer(&tok, &model, out)?;
    Ok(ExportSummary {
        out: out.to_path_buf(),
        architecture: architecture(&model.family, bias.is_some()),
        tensors: tensors.len(),
    })
}

/// The `transformers` class an export loads as.
fn architecture(family: &Family, reward_model: bool) -> &'static str {
    match (family, reward_model) {
        (Family::Gpt2, false) => hf_config::LM_ARCHITECTURE,
        (Family::Gpt2, true) => hf_config::RM_ARCHITECTURE,
        (Family::Llama(_), false) => llama_config::LM_ARCHITECTURE,
        (Family::Llama(_), true) => llama_config::RM_ARCHITECTURE,
    }
}

/// A language model's tensors as its family's `*ForCausalLM` saves them.
fn lm_tensors(m: &mut Lm) -> Result<Vec<(String, HostTensor)>> {
    match m {
        Lm::Gpt2(g) => gpt_tensors(g, "transformer."),
        Lm::Llama(l) => llama_tensors(l),
    }
}

/// A reward model's trunk as its family's `*ForSequenceClassification` saves it (no
/// unembedding).
fn trunk_tensors(m: &mut Lm) -> Result<Vec<(String, HostTensor)>> {
    match m {
        Lm::Gpt2(g) => gpt_tensors(g, "transformer."),
        Lm::Llama(l) => Ok(llama_tensors(l)?
            .into_iter()
            .filter(|(n, _)| !n.starts_with("lm_head."))
            .collect()),
    }
}

/// The tokenizer as `AutoTokenizer` loads it: `tokenizer.json` (the fast tokenizer), plus
/// `vocab.json` + `merges.txt` for the slow `GPT2Tokenizer`, and GPT-2's special-token settings.
fn write_tokenizer(tok: &Tok, model: &ModelConfig, out: &Path) -> Result<()> {
    tok.save(&out.join("tokenizer.json"))?;
    tok.inner.get_model().save(out, None).map_err(|e| {
        anyhow!(
            "writing vocab.json and merges.txt to {}: {e}",
            out.display()
        )
    })?;
    let config = json!({
        "tokenizer_class": "GPT2Tokenizer",
        "model_max_length": model.n_ctx,
        "bos_token": EOT,
        "eos_token": EOT,
        "unk_token": EOT,
        "add_prefix_space": false,
        "add_bos_token": false,
        "clean_up_tokenization_spaces": false,
    });
    save_json(&config, &out.join("tokenizer_config.json"))?;
    let special = json!({"bos_token": EOT, "eos_token": EOT, "unk_token": EOT});
    save_json(&special, &out.join("special_tokens_map.json"))
}
