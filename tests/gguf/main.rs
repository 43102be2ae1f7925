//! GGUF (`rlhf::gguf`): the block dequantisers, the reader, the writer and the tokenizer,
//! checked against files and values made by llama.cpp's python package (gguf-py) and by
//! `transformers` (`tests/gguf_reference/make_reference.py`), against the real SmolLM2-135M
//! GGUF where it is present (`smollm2.rs`), and against broken input.
//! One test binary for the area: a module per file.

mod bad_input;
mod file;
mod quant;
mod smollm2;
mod tokenizer;

use rlhf::gguf::GgmlType;
use std::path::PathBuf;

/// A file of `tests/gguf_reference/`.
pub fn reference(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/gguf_reference")
        .join(name)
}

/// A JSON fixture of `tests/gguf_reference/`.
pub fn json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(reference(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn ggml_type(name: &str) -> GgmlType {
    GgmlType::from_name(name).unwrap_or_else(|| panic!("no ggml type {name}"))
}

/// The u32 bit patterns of a JSON array.
pub fn bits_of(v: &serde_json::Value) -> Vec<u32> {
    let a = v.as_array().unwrap();
    a.iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// `got` has exactly the bits of `want`, value for value (NaN never equals a number, -0 never
/// equals 0); on failure says where and how many differ.
pub fn assert_bits(got: &[f32], want: &[u32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: number of values");
    let bad: Vec<usize> = (0..got.len())
        .filter(|&i| got[i].to_bits() != want[i])
        .collect();
    if let Some(&i) = bad.first() {
        panic!(
            "{what}: {} of {} values differ; first at {i}: got {} ({:#010x}), want {} ({:#010x})",
            bad.len(),
            got.len(),
            got[i],
            got[i].to_bits(),
            f32::from_bits(want[i]),
            want[i]
        );
    }
}

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The error's message with its whole context chain.
pub fn message<T>(r: anyhow::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

/// Asserts `msg` holds every one of `parts`.
pub fn assert_mentions(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} does not mention {p:?}");
    }
}
