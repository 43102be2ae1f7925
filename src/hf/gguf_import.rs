//! `rlhf import --from FILE.gguf`: a llama.cpp GGUF file of the Llama family
//! (`general.architecture` `llama`, as SmolLM2 and Llama 3.x, or `qwen2`) → a checkpoint every
//! stage accepts. Every tensor is dequantised to f32 (`gguf::quant`: F32, F16, BF16, Q4_0 to
//! Q8_0, Q2_K to Q6_K); the tokenizer is built from the file's vocabulary and merges
//! (`gguf::tokenizer`) and its chat template kept beside it.
//!
//! llama.cpp's converter reorders the rows of each head of `attn_q` and `attn_k` for `llama`
//! files (its rotary kernel pairs neighbouring elements, `transformers`' pairs the two halves of a
//! head); the import puts them back in `transformers`' order, as `transformers` does when it
//! reads a GGUF ([`super::gguf_names`]). `qwen2` files keep `transformers`' order.

use super::gguf_names::{gguf_name, unpermute};
use super::import::{write_imported, ImportSummary, Imported};
use super::llama_weights::{llama_slots, Named};
use super::weights::HostTensor;
use crate::config::{Family, LlamaConfig, ModelConfig};
use crate::data::tokenizer::Tok;
use crate::gguf::{GgufFile, GgufTokenizer};
use crate::model::init::Init;
use crate::model::{Llama, Lm};
use anyhow::{bail, Context, Result};
use burn::prelude::*;
use std::collections::BTreeSet;
use std::path::Path;

/// Converts the GGUF file `path` into a checkpoint directory `out` (absent or empty).
pub fn import_gguf(path: &Path, out: &Path) -> Result<ImportSummary> {
    let file = GgufFile::open(path)?;
    let arch = file.get_str("general.architecture")?.to_string();
    let permuted = match arch.as_str() {
        "llama" => true,
        "qwen2" => false,
        other => bail!(
            "{}: general.architecture is '{other}': supported are 'llama' (SmolLM2, Llama \
             3.x) and 'qwen2' (Qwen2, Qwen2.5)",
            path.display()
        ),
    };
    let gt = GgufTokenizer::from_gguf(&file)?;
    let mut tok =
        Tok::from_tokenizer(gt.tokenizer).with_context(|| format!("{}", path.display()))?;
    if let Some(t) = &gt.chat_template {
        tok = tok
            .with_chat_template(t)
            .with_context(|| format!("{}: tokenizer.chat_template", path.display()))?;
    }
    let cfg =
        config(&file, &arch, tok.vocab_size()).with_context(|| format!("{}", path.display()))?;
    let Family::Llama(f) = &cfg.family else {
        unreachable!("config() builds a Llama")
    };
    let device = Device::flex();
    let mut m = Llama::build(&cfg, f, &mut Init::Zeros, &device);
    let read = set_weights(&mut m, &file, &cfg, f, permuted, &device)
        .with_context(|| format!("{}", path.display()))?;
    let kind = write_imported(out, &Imported::Lm(Lm::Llama(m)), &cfg, None, &tok, "import")?;
    Ok(ImportSummary {
        out: out.to_path_buf(),
        kind,
        model: cfg,
        tensors: read,
        skipped: Vec::new(),
    })
}

/// The model's shape from the `{arch}.*` keys (llama.cpp's names for `LlamaConfig`'s fields).
fn config(file: &GgufFile, arch: &str, vocab: usize) -> Result<ModelConfig> {
    let key = |k: &str| format!("{arch}.{k}");
    let usize_of = |k: &str| -> Result<usize> { Ok(file.get_u64(&key(k))? as usize) };
    let n_head = usize_of("attention.head_count")?;
    let n_embd = usize_of("embedding_length")?;
    let n_kv_head = match file.get_opt::<u64>(&key("attention.head_count_kv"))? {
        Some(n) => n as usize,
        None => n_head,
    };
    if let Some(kind) = file.get_opt::<&str>(&key("rope.scaling.type"))? {
        if kind != "none" {
            bail!("{} = '{kind}' is not supported", key("rope.scaling.type"));
        }
    }
    if file.tensor("rope_freqs.weight").is_ok() {
        bail!("tensor 'rope_freqs.weight' (Llama 3's rotary scaling as factors) is not supported");
    }
    let hs = n_embd / n_head.max(1);
    if let Some(d) = file.get_opt::<u64>(&key("rope.dimension_count"))? {
        if d as usize != hs {
            bail!(
                "{} = {d}: partial rotary embeddings are not supported",
                key("rope.dimension_count")
            );
        }
    }
    let llama = LlamaConfig {
        n_kv_head,
        intermediate_size: usize_of("feed_forward_length")?,
        rope_theta: file
            .get_opt::<f32>(&key("rope.freq_base"))?
            .unwrap_or(10_000.0) as f64,
        rope_scaling: None,
        attention_bias: file.tensor("blk.0.attn_q.bias").is_ok(),
        tie_word_embeddings: file.tensor("output.weight").is_err(),
    };
    let cfg = ModelConfig {
        family: Family::Llama(llama),
        n_layer: usize_of("block_count")?,
        n_embd,
        n_head,
        n_ctx: usize_of("context_length")?,
        vocab_size: vocab,
        dropout: 0.0,
        layer_norm_epsilon: file.get_f32(&key("attention.layer_norm_rms_epsilon"))? as f64,
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Sets every parameter from the file; every tensor of the file must be used. Returns how many
/// were read.
fn set_weights(
    m: &mut Llama,
    file: &GgufFile,
    cfg: &ModelConfig,
    f: &LlamaConfig,
    permuted: bool,
    device: &Device,
) -> Result<usize> {
    let mut used = BTreeSet::new();
    for Named {
        name,
        mut slot,
        transposed,
    } in llama_slots(m)
    {
        let g = gguf_name(&name)?;
        let (shape, data) = file
            .tensor_f32(&g)
            .with_context(|| format!("tensor '{g}' (for '{name}')"))?;
        let mut t = HostTensor { shape, data };
        if permuted && name.contains("self_attn.q_proj") {
            t = unpermute(&t, cfg.n_head);
        } else if permuted && name.contains("self_attn.k_proj") {
            t = unpermute(&t, f.n_kv_head);
        }
        let t = if transposed { t.transposed()? } else { t };
        slot.set(&t, device)
            .with_context(|| format!("tensor '{g}' (for '{name}')"))?;
        used.insert(g);
    }
    let unknown: Vec<&str> = file
        .tensors()
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| !used.contains(*n))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "{} tensor(s) the model has no place for: {}",
            unknown.len(),
            unknown
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(used.len())
}
