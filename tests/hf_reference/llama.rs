//! The Llama family against `transformers`: a tiny `LlamaForCausalLM` (grouped-query attention,
//! Llama 3's rotary scaling, an untied head) and a tiny `Qwen2ForCausalLM` (q/k/v biases, tied
//! embeddings), made, saved and run by `transformers` (`make_llama_reference.py`), imported by
//! `rlhf import-hf`: the logits of an unpadded row and of a left-padded batch must be
//! `transformers`' own, and KV-cached greedy decoding must pick what the uncached forward picks.

use super::{hf_dir, imported_logits, max_diff, read_json, reference, TOLERANCE};
use burn::prelude::*;
use rlhf::checkpoint;
use rlhf::model::generate::{argmax, Decoder};
use rlhf::model::Lm;
use rlhf::util::tensors::{bools, ints, to_vec};
use std::path::Path;

pub(super) fn col<T>(v: &serde_json::Value, f: impl Fn(&serde_json::Value) -> T) -> Vec<T> {
    v.as_array().unwrap().iter().map(f).collect()
}

pub(super) fn flat(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter())
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Our logits of the left-padded batch at the real tokens, the first 64 vocabulary columns,
/// as the reference stores them: positions count from each row's first real token.
fn padded_logits(m: &Lm, ids: &[Vec<i64>], mask: &[Vec<i64>]) -> Vec<f32> {
    let dev = Device::flex();
    let (b, t) = (ids.len(), ids[0].len());
    let flat_ids: Vec<i64> = ids.concat();
    let pad: Vec<bool> = mask.concat().iter().map(|&m| m == 0).collect();
    let pos: Vec<i64> = mask
        .iter()
        .flat_map(|row| {
            let mut n = -1;
            row.iter()
                .map(move |&m| {
                    n += m;
                    n.max(0)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let h = m.hidden(
        ints(&flat_ids, [b, t], &dev),
        ints(&pos, [b, t], &dev),
        Some(bools(&pad, [b, t], &dev)),
    );
    let logits = to_vec(m.logits(h)).unwrap();
    let v = m.vocab_size();
    let mut out = Vec::new();
    for (r, row) in mask.iter().enumerate() {
        for (i, &keep) in row.iter().enumerate() {
            if keep == 1 {
                let at = (r * t + i) * v;
                out.extend_from_slice(&logits[at..at + 64]);
            }
        }
    }
    out
}

fn check_family(fixture: &str) {
    let want = read_json(&reference().join(format!("llama/{fixture}/logits.json")));
    let ids: Vec<i64> = col(&want["ids"], |x| x.as_i64().unwrap());
    let v = crate::common::tok().vocab_size();
    let d = crate::common::tmp_dir(&format!("hf-{fixture}"));
    let hf = hf_dir(&d, &format!("llama/{fixture}"));
    let out = d.join("imported");
    let got = imported_logits(&hf, &out, &ids);
    let (diff, (pos, tok)) = max_diff(&got, &flat(&want["logits"]), v);
    eprintln!("{fixture}: max |ours - transformers| = {diff:.2e} at ({pos}, {tok})");
    assert!(
        diff < TOLERANCE,
        "{fixture}: logits differ by {diff} at ({pos}, {tok})"
    );

    let m = checkpoint::load_lm(&out, &Device::flex()).unwrap().model;
    assert!(
        matches!(m, Lm::Llama(_)),
        "{fixture} imported as another family"
    );
    let rows: Vec<Vec<i64>> = col(&want["padded_ids"], |r| col(r, |x| x.as_i64().unwrap()));
    let mask: Vec<Vec<i64>> = col(&want["padded_mask"], |r| col(r, |x| x.as_i64().unwrap()));
    let got = padded_logits(&m, &rows, &mask);
    let want_padded: Vec<f32> = want["padded_logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(flat)
        .collect();
    let (diff, _) = max_diff(&got, &want_padded, 64);
    assert!(
        diff < TOLERANCE,
        "{fixture}: left-padded logits differ by {diff}"
    );

    greedy_with_and_without_cache_agree(&m, &ids[..7]);
}

/// Twelve greedy tokens after `prompt`, with the KV cache (rotated keys reused) and without it.
fn greedy_with_and_without_cache_agree(m: &Lm, prompt: &[i64]) {
    let dev = Device::flex();
    let prompt: Vec<u32> = prompt.iter().map(|&x| x as u32).collect();
    let run = |cache: bool| {
        let (mut d, mut logits) =
            Decoder::prefill(m, std::slice::from_ref(&prompt), cache, &dev).unwrap();
        let mut toks = Vec::new();
        for _ in 0..12 {
            let t = argmax(&logits[0]) as u32;
            toks.push(t);
            logits = d.step(&[t]).unwrap();
        }
        toks
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn llama_with_gqa_llama3_rope_and_untied_head_imports_with_transformers_logits() {
    check_family("llama");
}

#[test]
fn qwen2_with_qkv_biases_and_tied_head_imports_with_transformers_logits() {
    check_family("qwen2");
}

/// The comparison notices a wrong rotation: the same weights with Llama 3's scaling removed
/// from config.json give other logits (the scaling changes angles past position 16/4 = 4).
#[test]
fn llama_without_its_rope_scaling_is_caught() {
    let want = read_json(&reference().join("llama/llama/logits.json"));
    let ids: Vec<i64> = col(&want["ids"], |x| x.as_i64().unwrap());
    let d = crate::common::tmp_dir("hf-llama-norope");
    let hf = hf_dir(&d, "llama/llama");
    let cfg_path = hf.join("config.json");
    let mut cfg = read_json(&cfg_path);
    cfg["rope_parameters"] = serde_json::json!({"rope_theta": 10000.0, "rope_type": "default"});
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let got = imported_logits(&hf, Path::new(&d.join("imported")), &ids);
    let (diff, _) = max_diff(
        &got,
        &flat(&want["logits"]),
        crate::common::tok().vocab_size(),
    );
    assert!(
        diff > 0.05,
        "unscaled rotary frequencies went unnoticed: {diff}"
    );
}
