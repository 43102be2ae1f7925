//! `rlhf export --format gguf`: a Llama-family language-model checkpoint → one GGUF v3 file
//! that llama.cpp (and so Ollama) loads, laid out as llama.cpp's `convert_hf_to_gguf.py` writes
//! the same model, and that `rlhf import` reads back into the same checkpoint.
//!
//! - Architecture: `llama`, or `qwen2` for a model with q/k/v biases. llama.cpp's `llama` treats
//!   those biases as optional, but `transformers` builds a `llama` file as a `LlamaConfig`
//!   without them and drops them; its `qwen2` always has them, and llama.cpp's `qwen2` requires
//!   them, so every reader computes the same function. A `llama` file's `attn_q`/`attn_k` rows are
//!   reordered for llama.cpp's rotation ([`super::gguf_names::permute`]); a `qwen2` file keeps
//!   `transformers`' order, as llama.cpp's Qwen2 rotates halves.
//! - Metadata: the `{arch}.*` shape keys `rlhf import` and llama.cpp read, `general.file_type`,
//!   and the tokenizer ([`super::gguf_vocab`]).
//! - Tensors: under llama.cpp's names; norms (every 1-D tensor) in F32 as the converter writes
//!   them, matrices in the chosen type. A matrix whose rows are not whole 32-value Q8_0 blocks is
//!   written as F16, as the converter falls back. `output.weight` only when the head is untied.
//!
//! Refused with an error: reward models (GGUF holds language models), GPT-2 checkpoints, and
//! Llama 3's rotary scaling (llama.cpp stores it as a `rope_freqs.weight` tensor of per-frequency
//! factors, not as metadata; `rlhf import` and `transformers` ignore or refuse that tensor, so a
//! file with it would not read back as the same model).

use super::gguf_names::{gguf_name, permute};
use super::gguf_vocab::{add_tokenizer, GgufVocab};
use super::llama_weights::llama_tensors;
use super::weights::HostTensor;
use crate::checkpoint::{self, CheckpointConfig, CheckpointKind};
use crate::config::{load_json, Family, LlamaConfig, ModelConfig};
use crate::gguf::{GgmlType, GgufWriter, Value};
use crate::model::Lm;
use anyhow::{bail, Context, Result};
use burn::prelude::*;
use std::path::{Path, PathBuf};

/// What a GGUF export wrote.
#[derive(Debug)]
pub struct GgufExportSummary {
    pub out: PathBuf,
    /// `general.architecture`: `llama` or `qwen2`.
    pub architecture: &'static str,
    /// The type of the matrices (`general.file_type`).
    pub ggml_type: GgmlType,
    pub tensors: usize,
    /// Matrices written as F16 because their rows are not whole Q8_0 blocks.
    pub f16_fallback: Vec<String>,
}

/// llama.cpp's `llama_ftype` for files whose matrices are all `ty`: F32, F16 or Q8_0.
fn file_type(ty: GgmlType) -> Result<u32> {
    Ok(match ty {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q8_0 => 7,
        other => bail!("GGUF export writes F32, F16 or Q8_0 matrices, not {other}"),
    })
}

/// Writes the language-model checkpoint `ckpt` (a checkpoint or a stage directory) as the GGUF
/// file `out` (replaced if present), its matrices as `ty` (F32, F16 or Q8_0).
pub fn export_gguf(ckpt: &Path, out: &Path, ty: GgmlType) -> Result<GgufExportSummary> {
    let ftype = file_type(ty)?;
    let dir = checkpoint::resolve(ckpt)?;
    let cc: CheckpointConfig = load_json(&dir.join("config.json"))?;
    let f = exportable(&dir, &cc)?;
    let arch = if f.attention_bias { "qwen2" } else { "llama" };
    let mut loaded = checkpoint::load_lm(&dir, &Device::flex())?;
    // a LoRA checkpoint exports as the model it computes: adapters folded in
    loaded.model = loaded.model.merged();
    let vocab = GgufVocab::of(&loaded.tok).with_context(|| format!("{}", dir.display()))?;
    let template = loaded.tok.chat.as_ref().map(|c| c.source.clone());
    let Lm::Llama(m) = &mut loaded.model else {
        bail!(
            "{}: config.json says Llama, the weights are not",
            dir.display()
        );
    };
    let tensors = llama_tensors(m)?;
    let n_tensors = tensors.len();
    let mut w = GgufWriter::new();
    let name = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rlhf".into());
    add_model_keys(&mut w, arch, &name, &cc.model, f, ftype)?;
    add_tokenizer(&mut w, vocab, template.as_deref())?;
    let f16_fallback = add_tensors(&mut w, tensors, arch == "llama", &cc.model, f, ty)?;
    w.add_metadata("general.quantization_version", Value::U32(2))?;
    crate::util::fs::create_parent_dir(out)?;
    w.write(out)?;
    Ok(GgufExportSummary {
        out: out.to_path_buf(),
        architecture: arch,
        ggml_type: ty,
        tensors: n_tensors,
        f16_fallback,
    })
}

/// The Llama settings of a checkpoint GGUF can hold: a language model of the Llama family
/// without Llama 3's rotary scaling.
fn exportable<'a>(dir: &Path, cc: &'a CheckpointConfig) -> Result<&'a LlamaConfig> {
    if cc.kind == CheckpointKind::Rm {
        bail!(
            "{} is a reward model: GGUF holds language models (llama.cpp has no scalar reward \
             head); export it with --format hf",
            dir.display()
        );
    }
    let Family::Llama(f) = &cc.model.family else {
        bail!(
            "{} is a GPT-2 model: GGUF export writes the Llama family (llama, qwen2); export \
             GPT-2 with --format hf",
            dir.display()
        );
    };
    if let Some(s) = &f.rope_scaling {
        bail!(
            "{}: Llama 3's rotary scaling (factor {}) has no GGUF metadata key: llama.cpp keeps \
             it as a rope_freqs.weight tensor, which rlhf import and transformers do not read",
            dir.display(),
            s.factor
        );
    }
    Ok(f)
}

/// `general.*` and the model's shape under llama.cpp's `{arch}.*` names (`LlamaConfig`'s
/// fields, as [`super::gguf_import`] reads them back).
fn add_model_keys(
    w: &mut GgufWriter,
    arch: &str,
    name: &str,
    m: &ModelConfig,
    f: &LlamaConfig,
    ftype: u32,
) -> Result<()> {
    let u32_of = |x: usize, what: &str| {
        u32::try_from(x)
            .map(Value::U32)
            .with_context(|| format!("{what} = {x} does not fit a GGUF u32"))
    };
    w.add_metadata("general.architecture", Value::String(arch.into()))?;
    w.add_metadata("general.type", Value::String("model".into()))?;
    w.add_metadata("general.name", Value::String(name.into()))?;
    let keys = [
        ("block_count", m.n_layer),
        ("context_length", m.n_ctx),
        ("embedding_length", m.n_embd),
        ("feed_forward_length", f.intermediate_size),
        ("attention.head_count", m.n_head),
        ("attention.head_count_kv", f.n_kv_head),
    ];
    for (k, v) in keys {
        w.add_metadata(format!("{arch}.{k}"), u32_of(v, k)?)?;
    }
    w.add_metadata(
        format!("{arch}.rope.freq_base"),
        Value::F32(f.rope_theta as f32),
    )?;
    w.add_metadata(
        format!("{arch}.attention.layer_norm_rms_epsilon"),
        Value::F32(m.layer_norm_epsilon as f32),
    )?;
    w.add_metadata("general.file_type", Value::U32(ftype))?;
    w.add_metadata(
        format!("{arch}.vocab_size"),
        u32_of(m.vocab_size, "vocab_size")?,
    )?;
    let hs = m.n_embd / m.n_head.max(1);
    w.add_metadata(
        format!("{arch}.rope.dimension_count"),
        u32_of(hs, "head size")?,
    )
}

/// Adds every tensor (`transformers`' names and layouts) under llama.cpp's name, q/k rows
/// reordered when `permuted`. Returns the matrices that fell back to F16.
fn add_tensors(
    w: &mut GgufWriter,
    tensors: Vec<(String, HostTensor)>,
    permuted: bool,
    m: &ModelConfig,
    f: &LlamaConfig,
    ty: GgmlType,
) -> Result<Vec<String>> {
    let mut fallback = Vec::new();
    for (hf, t) in tensors {
        let name = gguf_name(&hf)?;
        let t = if permuted && hf.contains("self_attn.q_proj") {
            permute(&t, m.n_head)
        } else if permuted && hf.contains("self_attn.k_proj") {
            permute(&t, f.n_kv_head)
        } else {
            t
        };
        let row = t.shape.last().copied().unwrap_or(0);
        let tty = match (t.shape.len(), ty) {
            (1, _) => GgmlType::F32,
            (_, GgmlType::Q8_0) if !row.is_multiple_of(GgmlType::Q8_0.block_size()) => {
                fallback.push(name.clone());
                GgmlType::F16
            }
            _ => ty,
        };
        if tty == GgmlType::F16 {
            check_f16_range(&t.data).with_context(|| format!("tensor '{hf}'"))?;
        }
        w.add_tensor(&name, &t.shape, &t.data, tty)
            .with_context(|| format!("writing '{hf}'"))?;
    }
    Ok(fallback)
}

/// Refuses values an F16 would store as infinity (or NaN).
fn check_f16_range(x: &[f32]) -> Result<()> {
    let max = f32::from(half::f16::MAX);
    if let Some((i, v)) = x
        .iter()
        .enumerate()
        .find(|(_, v)| v.is_nan() || v.abs() > max)
    {
        bail!("value {v} at {i} does not fit an F16 (|x| <= {max}): export as f32");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_types_are_llama_cpps() {
        // llama.h: LLAMA_FTYPE_ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q8_0 = 7
        assert_eq!(file_type(GgmlType::F32).unwrap(), 0);
        assert_eq!(file_type(GgmlType::F16).unwrap(), 1);
        assert_eq!(file_type(GgmlType::Q8_0).unwrap(), 7);
        assert!(file_type(GgmlType::Q4_0).is_err());
    }

    #[test]
    fn f16_overflow_is_refused() {
        assert!(check_f16_range(&[1.0, -65504.0]).is_ok());
        assert!(check_f16_range(&[1.0, 70000.0]).is_err());
        assert!(check_f16_range(&[f32::NAN]).is_err());
    }
}
