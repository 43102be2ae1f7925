//! A checkpoint's tokenizer as GGUF metadata, the keys llama.cpp's converter writes for a
//! byte-level BPE (`tokenizer.ggml.model = gpt2`): the tokens in id order, their types, the
//! merges by rank, `tokenizer.ggml.pre` (the name of the pre-tokenizer, which llama.cpp maps to
//! its regexes), the special token ids and the chat template. [`crate::gguf::GgufTokenizer`]
//! reads them back into the same tokenizer.
//!
//! The pre-tokenizer is named from the `tokenizer.json`'s own steps (a `Split` by regex, `Digits`,
//! a `ByteLevel` with or without GPT-2's regex) and the BPE's `ignore_merges`, matched against
//! the families [`crate::gguf::tokenizer::pre_tokenizer`] knows: a checkpoint imported from a
//! GGUF file gets its family's canonical name back (`smollm` for SmolLM2's, as its file says;
//! `smollm`, `starcoder` and `refact` are one pre-tokenizer to llama.cpp). Steps that match no
//! family are an error: llama.cpp would split the text differently from our tokenizer.

use crate::data::tokenizer::{Tok, EOT};
use crate::gguf::tokenizer::pre_tokenizer;
use crate::gguf::write::array;
use crate::gguf::{GgufWriter, Value, ValueType};
use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::Value as Json;

/// llama.cpp's token types (`llama_token_type`).
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

/// The names written for each pre-tokenizer family, in the order tried: the first of
/// `pre_tokenizer`'s names for each (`llama-bpe` is the one llama.cpp's converter writes for
/// Llama 3).
const CANDIDATES: [&str; 5] = ["smollm", "gpt-2", "llama-bpe", "dbrx", "qwen2"];

/// Tokens a file may name as BOS, in order of preference: Llama 3's, Llama 2's, ChatML's (SmolLM2
/// names its `<|im_start|>`), GPT-2's. llama.cpp adds BOS only when `add_bos_token` says so,
/// which an export never does (see [`add_tokenizer`]).
const BOS: [&str; 4] = ["<|begin_of_text|>", "<s>", "<|im_start|>", EOT];

/// A tokenizer as the `tokenizer.ggml.*` keys hold it.
#[derive(Debug)]
pub(crate) struct GgufVocab {
    /// `tokenizer.ggml.pre`.
    pub pre: &'static str,
    pub tokens: Vec<String>,
    pub types: Vec<i32>,
    /// `"a b"`, by rank.
    pub merges: Vec<String>,
    pub bos: Option<u32>,
    /// The response end ([`Tok::eot`]): what llama.cpp stops generating at.
    pub eos: u32,
}

impl GgufVocab {
    /// Reads `tok`'s vocabulary, token types, merges and pre-tokenizer.
    pub fn of(tok: &Tok) -> Result<Self> {
        let json: Json = serde_json::from_str(
            &tok.inner
                .to_string(false)
                .map_err(|e| anyhow!("serializing the tokenizer: {e}"))?,
        )
        .context("reading the tokenizer's JSON")?;
        let model = &json["model"];
        ensure!(
            model["type"] == "BPE",
            "the tokenizer's model is {}: GGUF export writes byte-level BPE only",
            model["type"]
        );
        for k in ["continuing_subword_prefix", "end_of_word_suffix"] {
            ensure!(
                model[k].is_null() || model[k] == "",
                "the tokenizer's BPE has a {k} ({}), which llama.cpp's BPE has no place for",
                model[k]
            );
        }
        let pre = pre_name(&json).context("naming the tokenizer's pre-tokenizer for llama.cpp")?;
        let n = tok.vocab_size() as u32;
        let added = tok.inner.get_added_tokens_decoder();
        let mut tokens = Vec::with_capacity(n as usize);
        let mut types = Vec::with_capacity(n as usize);
        for id in 0..n {
            let t = tok
                .inner
                .id_to_token(id)
                .ok_or_else(|| anyhow!("the tokenizer has no token with id {id} (of {n})"))?;
            tokens.push(t);
            types.push(match added.get(&id) {
                Some(a) if a.special => CONTROL,
                Some(_) => USER_DEFINED,
                None => NORMAL,
            });
        }
        Ok(Self {
            pre,
            tokens,
            types,
            merges: merges(&model["merges"])?,
            bos: BOS.iter().find_map(|t| tok.inner.token_to_id(t)),
            eos: tok.eot,
        })
    }
}

/// The merges as `"a b"` strings, from either of `tokenizers`' forms (`["a", "b"]` or `"a b"`).
fn merges(m: &Json) -> Result<Vec<String>> {
    let items = m
        .as_array()
        .ok_or_else(|| anyhow!("the tokenizer's BPE has no merges list"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| match x {
            Json::String(s) => Ok(s.clone()),
            Json::Array(p) => match (p.first(), p.get(1), p.len()) {
                (Some(Json::String(a)), Some(Json::String(b)), 2) => Ok(format!("{a} {b}")),
                _ => bail!("merge {i} is {x}, expected two tokens"),
            },
            _ => bail!("merge {i} is {x}, expected two tokens"),
        })
        .collect()
}

/// The `tokenizer.ggml.pre` whose regexes (and `ignore_merges`) are the tokenizer's.
fn pre_name(json: &Json) -> Result<&'static str> {
    let norm = &json["normalizer"];
    // NFC: llama.cpp does not normalize, and its converter ignores Qwen2's NFC the same way
    ensure!(
        norm.is_null() || norm["type"] == "NFC",
        "a normalizer ({}) that llama.cpp does not apply",
        norm["type"]
    );
    let gpt2 = pre_tokenizer("gpt-2")?.regexes[0];
    let regexes = regexes(&json["pre_tokenizer"], gpt2)?;
    let ignore_merges = json["model"]["ignore_merges"].as_bool().unwrap_or(false);
    for name in CANDIDATES {
        let spec = pre_tokenizer(name)?;
        if spec.regexes == regexes.as_slice() && spec.ignore_merges == ignore_merges {
            return Ok(name);
        }
    }
    bail!(
        "its splits {regexes:?} (ignore_merges {ignore_merges}) are none of the pre-tokenizers \
         llama.cpp knows by name ({})",
        CANDIDATES.join(", ")
    )
}

/// The regexes the pre-tokenizer `pre` splits by, in order: `Split`s by regex (isolated, not
/// inverted), `Digits` (`\p{N}` one digit at a time), and a final `ByteLevel` without a prefix
/// space (GPT-2's regex, `gpt2`, when it has `use_regex`).
fn regexes(pre: &Json, gpt2: &'static str) -> Result<Vec<String>> {
    let steps: Vec<&Json> = match pre["type"].as_str() {
        Some("Sequence") => pre["pretokenizers"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        Some(_) => vec![pre],
        None => bail!("the tokenizer has no pre-tokenizer: llama.cpp's BPE needs byte-level"),
    };
    let mut out = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        match s["type"].as_str().unwrap_or("") {
            "Split" if s["behavior"] == "Isolated" && s["invert"] != true => {
                let r = s["pattern"]["Regex"]
                    .as_str()
                    .ok_or_else(|| anyhow!("step {i}: a Split by {}", s["pattern"]))?;
                out.push(r.to_string());
            }
            "Digits" if s["individual_digits"] == true => out.push(r"\p{N}".into()),
            "ByteLevel" if last && s["add_prefix_space"] != true => {
                if s["use_regex"] != false {
                    out.push(gpt2.into());
                }
                return Ok(out);
            }
            _ => bail!("step {i} ({s}) has no llama.cpp equivalent"),
        }
    }
    bail!("the pre-tokenizer does not end in ByteLevel: llama.cpp's BPE is byte-level")
}

/// Adds the `tokenizer.*` keys: `v`, `add_bos_token = false` (our tokenizer never adds BOS, so
/// the model never saw one it did not ask for; llama.cpp adds one by default for Llama 3's
/// pre-tokenizer), EOS and padding as the response end, and `chat_template` when given.
pub(crate) fn add_tokenizer(
    w: &mut GgufWriter,
    v: GgufVocab,
    chat_template: Option<&str>,
) -> Result<()> {
    let strings = |xs: Vec<String>| array(ValueType::String, xs.into_iter().map(Value::String));
    w.add_metadata("tokenizer.ggml.model", Value::String("gpt2".into()))?;
    w.add_metadata("tokenizer.ggml.pre", Value::String(v.pre.into()))?;
    w.add_metadata("tokenizer.ggml.tokens", strings(v.tokens))?;
    w.add_metadata(
        "tokenizer.ggml.token_type",
        array(ValueType::I32, v.types.into_iter().map(Value::I32)),
    )?;
    w.add_metadata("tokenizer.ggml.merges", strings(v.merges))?;
    if let Some(b) = v.bos {
        w.add_metadata("tokenizer.ggml.bos_token_id", Value::U32(b))?;
    }
    w.add_metadata("tokenizer.ggml.eos_token_id", Value::U32(v.eos))?;
    w.add_metadata("tokenizer.ggml.padding_token_id", Value::U32(v.eos))?;
    w.add_metadata("tokenizer.ggml.add_bos_token", Value::Bool(false))?;
    if let Some(t) = chat_template {
        w.add_metadata("tokenizer.chat_template", Value::String(t.into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn name(pre: Json, ignore_merges: bool) -> Result<&'static str> {
        pre_name(&json!({"normalizer": null, "pre_tokenizer": pre,
                         "model": {"ignore_merges": ignore_merges}}))
    }

    fn byte_level(use_regex: bool) -> Json {
        json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
               "use_regex": use_regex})
    }

    fn split(r: &str) -> Json {
        json!({"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": false})
    }

    /// The pre-tokenizers of the `tokenizer.json`s of GPT-2, SmolLM2 (HF and imported from its
    /// GGUF), Llama 3 and Qwen2 get the names llama.cpp's converter gives them.
    #[test]
    fn families_get_llama_cpp_names() {
        let gpt2 = pre_tokenizer("gpt-2").unwrap().regexes[0];
        let llama3 = pre_tokenizer("llama-bpe").unwrap().regexes[0];
        let qwen2 = pre_tokenizer("qwen2").unwrap().regexes[0];
        let seq = |v: Vec<Json>| json!({"type": "Sequence", "pretokenizers": v});
        assert_eq!(name(byte_level(true), false).unwrap(), "gpt-2");
        let digits = json!({"type": "Digits", "individual_digits": true});
        assert_eq!(
            name(seq(vec![digits, byte_level(true)]), false).unwrap(),
            "smollm"
        );
        let imported = seq(vec![split(r"\p{N}"), split(gpt2), byte_level(false)]);
        assert_eq!(name(imported, false).unwrap(), "smollm");
        let l3 = seq(vec![split(llama3), byte_level(false)]);
        assert_eq!(name(l3.clone(), true).unwrap(), "llama-bpe");
        assert_eq!(name(l3, false).unwrap(), "dbrx");
        let q = seq(vec![split(qwen2), byte_level(false)]);
        assert_eq!(name(q, false).unwrap(), "qwen2");
    }

    #[test]
    fn other_pre_tokenizers_are_refused() {
        let e = name(split(r"\s+"), false).unwrap_err();
        assert!(
            format!("{e:#}").contains("does not end in ByteLevel"),
            "{e:#}"
        );
        let seq = json!({"type": "Sequence", "pretokenizers": [split(r"\s+"), byte_level(false)]});
        let e = name(seq, false).unwrap_err();
        assert!(
            format!("{e:#}").contains("none of the pre-tokenizers"),
            "{e:#}"
        );
        let ws = json!({"type": "Sequence",
                        "pretokenizers": [{"type": "Whitespace"}, byte_level(true)]});
        let e = name(ws, false).unwrap_err();
        assert!(
            format!("{e:#}").contains("no llama.cpp equivalent"),
            "{e:#}"
        );
        let prefix = json!({"type": "ByteLevel", "add_prefix_space": true, "use_regex": true});
        assert!(
            name(prefix, false).is_err(),
            "a prefix space went unnoticed"
        );
    }
}
