//! Our GPT-2 against outside references: the GPT-2 tokenizer against tiktoken (`tokenizer.rs`)
//! and, here, the model against Hugging Face `transformers` itself. The export → import round
//! trips of `tests/model/hf.rs` compare our code with itself, so a tensor transposed the same
//! wrong way in both directions passes them. The model in `model/` was made and saved by
//! `transformers` (`make_reference.py` says how and why) and `logits.json` holds the logits
//! `transformers` computed for it: importing it must give those logits, and exporting the
//! import must give back the very tensors `transformers` saved. `half_precision.rs` imports the
//! same model rounded to F16, and to BF16 in shards, by `transformers`. `peft.rs` checks LoRA
//! adapters against adapters PEFT itself saved.

mod gguf_export;
mod half_precision;
mod llama;
mod peft;
mod smollm2;
mod tokenizer;

use super::{logits, read_json, run_ok};
use rlhf::checkpoint;
use rlhf::hf::weights::{read_safetensors, write_safetensors};
use std::path::{Path, PathBuf};

/// Max |ours − transformers| over every logit. The two compute the same float32 sums in
/// different orders (matmul blocking, the LayerNorm and softmax reductions), which moves a logit
/// of magnitude ≤ 6.5 by ~1e-6 (~10 float32 ulps); the JSON's rounding to 1e-6 adds ≤ 5e-7. A
/// real mistake moves logits by O(1): `make_reference.py`'s weights make every tensor matter
/// (checked in transformers: zeroing one bias or LayerNorm shift, setting one gain to 1,
/// reversing `wpe` or transposing the square `attn.c_proj` moved the logits by 0.6 to 7.6).
const TOLERANCE: f32 = 1e-4;

fn reference() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/hf_reference")
}

/// A committed model (`fixture`: `model`, `model_f16`, `model_bf16_sharded`) as a complete
/// Hugging Face directory: every file `transformers` saved there (`config.json`, the weights and
/// any shard index), plus the tests' 512-token tokenizer as `tokenizer.json` (the script has no
/// tokenizer: the logits depend on token ids only, and import needs one of `vocab_size`).
fn hf_dir(root: &Path, fixture: &str) -> PathBuf {
    let hf = root.join("hf");
    crate::fixtures::copy_dir(&reference().join(fixture), &hf);
    crate::common::tok()
        .save(&hf.join("tokenizer.json"))
        .unwrap();
    hf
}

/// A logits file `make_reference.py` wrote: the input ids and the (T, V) logits, flattened.
struct Reference {
    ids: Vec<i64>,
    logits: Vec<f32>,
    vocab: usize,
}

fn read_reference(file: &str) -> Reference {
    let want = read_json(&reference().join(file));
    let dim = |i: usize| want["shape"][i].as_u64().unwrap() as usize;
    let (t, vocab) = (dim(0), dim(1));
    assert_eq!(
        vocab,
        crate::common::tok().vocab_size(),
        "the reference needs the test tokenizer"
    );
    let ids: Vec<i64> = want["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    let logits: Vec<f32> = want["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter())
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!((ids.len(), logits.len()), (t, t * vocab));
    assert!(logits.iter().any(|x| x.abs() > 1.0), "{file}: logits ~0");
    Reference { ids, logits, vocab }
}

/// Our logits `got` are within [`TOLERANCE`] of the reference's, everywhere.
fn assert_close(got: &[f32], want: &Reference, what: &str) {
    let v = want.vocab;
    let (diff, (pos, tok)) = max_diff(got, &want.logits, v);
    eprintln!("{what}: max |ours - transformers| = {diff:.2e} (position {pos}, token {tok})");
    assert!(
        diff < TOLERANCE,
        "{what}: logits differ from transformers' by {diff} at position {pos}, token {tok}: ours \
         {}, transformers {}",
        got[pos * v + tok],
        want.logits[pos * v + tok]
    );
}

/// `rlhf import-hf` of `hf`, then our logits for `ids`, flattened (T·V).
fn imported_logits(hf: &Path, out: &Path, ids: &[i64]) -> Vec<f32> {
    run_ok(&["import-hf", "--dir"], &[hf, Path::new("--out"), out]);
    let loaded = checkpoint::load_lm(out, &burn::prelude::Device::flex()).unwrap();
    logits(&loaded.model, ids)
}

/// (max |a − b|, where it is as (position, token)) for (T, V) logits flattened.
fn max_diff(a: &[f32], b: &[f32], vocab: usize) -> (f32, (usize, usize)) {
    assert_eq!(a.len(), b.len());
    let (i, d) = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        // a NaN difference is the worst and stays (`d > m` alone would skip it)
        .fold((0, 0.0f32), |m, (i, d)| {
            if !m.1.is_nan() && (d.is_nan() || d > m.1) {
                (i, d)
            } else {
                m
            }
        });
    (d, (i / vocab, i % vocab))
}

#[test]
fn transformers_model_imports_with_transformers_logits_and_exports_back_unchanged() {
    let want = read_reference("logits.json");
    let d = crate::common::tmp_dir("hf-reference");
    let hf = hf_dir(&d, "model");
    let got = imported_logits(&hf, &d.join("imported"), &want.ids);
    assert_close(&got, &want, "f32 model");

    // export is pinned to transformers' layout too: the same names, shapes and values
    let back = d.join("exported");
    run_ok(
        &["export-hf", "--out"],
        &[&back, Path::new("--ckpt"), &d.join("imported")],
    );
    let theirs = read_safetensors(&reference().join("model/model.safetensors")).unwrap();
    let ours = read_safetensors(&back.join("model.safetensors")).unwrap();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (name, t) in &theirs {
        assert_eq!(ours[name].shape, t.shape, "{name}");
        assert!(ours[name].data == t.data, "{name}: values changed");
    }
    let (our_cfg, their_cfg) = (
        read_json(&back.join("config.json")),
        read_json(&hf.join("config.json")),
    );
    for k in [
        "model_type",
        "architectures",
        "vocab_size",
        "n_positions",
        "n_embd",
        "n_layer",
        "n_head",
        "activation_function",
        "layer_norm_epsilon",
        "tie_word_embeddings",
    ] {
        assert_eq!(our_cfg[k], their_cfg[k], "config.json: {k}");
    }

    // the comparison catches what the round trips cannot: the same file with one square matrix
    // transposed (what an import that transposed attn.c_proj would compute) is far off
    let mut tensors: Vec<_> = theirs.into_iter().collect();
    let w = tensors
        .iter_mut()
        .find(|(n, _)| n == "transformer.h.1.attn.c_proj.weight")
        .unwrap();
    w.1 = w.1.transposed().unwrap();
    write_safetensors(&tensors, &hf.join("model.safetensors")).unwrap();
    let bad = imported_logits(&hf, &d.join("transposed"), &want.ids);
    let (diff, _) = max_diff(&bad, &want.logits, want.vocab);
    assert!(
        diff > 0.5,
        "a transposed attn.c_proj went unnoticed: {diff}"
    );
}
