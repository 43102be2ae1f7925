//! Each supported block type dequantises, bit for bit, to what gguf-py's `gguf.quants` gives
//! for the same blocks (`quant_blocks.json`: quantised and random blocks, see the script for
//! why bits and not a tolerance); and the quantisers the writer uses produce gguf-py's bytes.

use super::{assert_bits, assert_mentions, bits_of, ggml_type, hex, json, message};
use rlhf::gguf::quant::{dequantize, quantize};
use rlhf::gguf::GgmlType;

/// Dequantises the fixture's blocks of `name` and compares with gguf-py's values.
fn check(name: &str) {
    let doc = json("quant_blocks.json");
    let t = doc["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == name)
        .unwrap_or_else(|| panic!("quant_blocks.json has no {name}"));
    let blocks = hex(t["blocks"].as_str().unwrap());
    let ty = ggml_type(name);
    assert_eq!(blocks.len() % ty.type_size(), 0);
    let got = dequantize(ty, &blocks).unwrap();
    assert_eq!(got.len(), blocks.len() / ty.type_size() * ty.block_size());
    assert_bits(&got, &bits_of(&t["expected"]), name);
}

macro_rules! per_type {
    ($($test:ident: $name:literal),* $(,)?) => {$(
        #[test]
        fn $test() {
            check($name);
        }
    )*};
}

per_type!(
    f32: "F32",
    f16: "F16",
    bf16: "BF16",
    q4_0: "Q4_0",
    q4_1: "Q4_1",
    q5_0: "Q5_0",
    q5_1: "Q5_1",
    q8_0: "Q8_0",
    q2_k: "Q2_K",
    q3_k: "Q3_K",
    q4_k: "Q4_K",
    q5_k: "Q5_K",
    q6_k: "Q6_K",
);

#[test]
fn the_fixture_covers_every_supported_type() {
    let doc = json("quant_blocks.json");
    let mut names: Vec<&str> = doc["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    names.sort();
    let mut supported: Vec<String> = (0..64)
        .filter_map(GgmlType::from_id)
        .filter(|t| t.can_dequantize())
        .map(|t| t.name())
        .collect();
    supported.sort();
    assert_eq!(names, supported);
}

#[test]
fn an_unsupported_type_or_a_partial_block_is_an_error_that_says_so() {
    let msg = message(dequantize(GgmlType::IQ2_XXS, &[0u8; 66]));
    assert_mentions(&msg, &["dequantising IQ2_XXS is not supported"]);
    let msg = message(dequantize(GgmlType::Q4_K, &[0u8; 145]));
    assert_mentions(&msg, &["145 bytes of Q4_K data", "144-byte blocks"]);
    let msg = message(quantize(GgmlType::Q8_0, &[0.0; 33]));
    assert_mentions(&msg, &["33 values", "32-value Q8_0 blocks"]);
    let msg = message(quantize(GgmlType::Q4_K, &[0.0; 256]));
    assert_mentions(&msg, &["writing Q4_K is not supported"]);
}

/// F16 and Q8_0 from the f32 values gguf-py encoded in tiny.gguf: the same bytes.
#[test]
fn quantisers_give_gguf_py_bytes() {
    let file = rlhf::gguf::GgufFile::open(super::reference("tiny.gguf")).unwrap();
    let doc = json("tiny.json");
    let mut checked = vec![];
    for t in doc["tensors"].as_array().unwrap() {
        let Some(src) = t.get("source") else { continue };
        let name = t["name"].as_str().unwrap();
        let src: Vec<f32> = bits_of(src).into_iter().map(f32::from_bits).collect();
        let ours = quantize(ggml_type(t["type"].as_str().unwrap()), &src).unwrap();
        assert!(
            ours == file.tensor_bytes(name).unwrap(),
            "{name}: bytes differ"
        );
        checked.push(t["type"].as_str().unwrap().to_string());
    }
    checked.sort();
    checked.dedup();
    assert_eq!(checked, ["F16", "F32", "Q8_0"]);
}
