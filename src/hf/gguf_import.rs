//! `rlhf import --from FILE.gguf`: a llama.cpp GGUF file of the Llama family
//! (`general.architecture` `llama`, as SmolLM2 and Llama 3.x, or `qwen2`) → a checkpoint every
//! stage accepts. Every tensor is dequantised to f32 (`gguf::quant`: F32, F16, BF16, Q4_0 to
//! Q8_0, Q2_K to Q6_K); the tokenizer is built from the file's vocabulary and merges
//! (`gguf::tokenizer`) and its chat template kept beside it.
//!
//! llama.cpp's converter reorders the rows of each head of `attn_q` and `attn_k` for `llama`
//! files (its rotary kernel pairs neighbouring elements, `transformers`' pairs the two halves of a
//! head); the import puts them back in `transformers`' order, as `transformers` does when it
//! reads a GGUF. `qwen2` files keep `transformers`' order.

use super::import::{write_imported, ImportSummary, Imported};
use super::llama_weights::{llama_slots, Named};
use super::weights::HostTensor;
use crate::config::{Family, LlamaConfig, ModelConfig};
use crate::data::tokenizer::Tok;
use crate::gguf::{GgufFile, GgufTokenizer};
use crate::model::init::Init;
use crate::model::{Llama, Lm};
use anyhow::{anyhow, bail, Context, Result};
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

/// llama.cpp's name of a `transformers` tensor name.
fn gguf_name(hf: &str) -> Result<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(n) = fixed {
        return Ok(n.into());
    }
    let rest = hf
        .strip_prefix("model.layers.")
        .ok_or_else(|| anyhow!("no GGUF name for '{hf}'"))?;
    let (layer, rest) = rest
        .split_once('.')
        .ok_or_else(|| anyhow!("no GGUF name for '{hf}'"))?;
    let (module, param) = rest
        .rsplit_once('.')
        .ok_or_else(|| anyhow!("no GGUF name for '{hf}'"))?;
    let short = match module {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        _ => bail!("no GGUF name for '{hf}'"),
    };
    Ok(format!("blk.{layer}.{short}.{param}"))
}

/// Undoes llama.cpp's row order within each of `heads` heads: its row `2j + s` of a head is
/// `transformers`' row `s·hs/2 + j`. `t` is `[heads·hs, cols]` or `[heads·hs]`.
fn unpermute(t: &HostTensor, heads: usize) -> HostTensor {
    let rows = t.shape[0];
    let cols = t.data.len() / rows.max(1);
    let hs = rows / heads;
    let half = hs / 2;
    let mut data = vec![0.0; t.data.len()];
    for h in 0..heads {
        for s in 0..2 {
            for j in 0..half {
                let to = h * hs + s * half + j;
                let from = h * hs + 2 * j + s;
                data[to * cols..(to + 1) * cols]
                    .copy_from_slice(&t.data[from * cols..(from + 1) * cols]);
            }
        }
    }
    HostTensor {
        shape: t.shape.clone(),
        data,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_as_llama_cpp_names_them() {
        let cases = [
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("model.layers.3.self_attn.q_proj.bias", "blk.3.attn_q.bias"),
            (
                "model.layers.12.self_attn.o_proj.weight",
                "blk.12.attn_output.weight",
            ),
            (
                "model.layers.0.mlp.down_proj.weight",
                "blk.0.ffn_down.weight",
            ),
            (
                "model.layers.0.post_attention_layernorm.weight",
                "blk.0.ffn_norm.weight",
            ),
            ("model.norm.weight", "output_norm.weight"),
            ("lm_head.weight", "output.weight"),
        ];
        for (hf, want) in cases {
            assert_eq!(gguf_name(hf).unwrap(), want);
        }
        assert!(gguf_name("model.layers.0.mlp.fc.weight").is_err());
    }

    /// llama.cpp's `permute` (convert_hf_to_gguf.py) on one head of 4 rows [a, b, c, d] (halves
    /// [a, b] and [c, d]) gives [a, c, b, d]; undoing it gives [a, b, c, d] back.
    #[test]
    fn unpermute_restores_the_halves_of_each_head() {
        let t = HostTensor {
            shape: vec![8, 1],
            data: vec![0., 2., 1., 3., 10., 12., 11., 13.],
        };
        let back = unpermute(&t, 2);
        assert_eq!(back.data, vec![0., 1., 2., 3., 10., 11., 12., 13.]);
    }
}
