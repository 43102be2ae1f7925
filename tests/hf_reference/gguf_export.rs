//! `rlhf export --format gguf` against itself and against outside readers:
//! - SmolLM2-135M-Instruct's GGUF (ignored without `RLHF_SMOLLM2_GGUF`, as in `smollm2.rs`):
//!   import → export f32 → import gives the very weights (bytes), logits (bits), tokenizer and
//!   chat template; the f32 file holds the source file's tensors dequantised, bit for bit and in
//!   llama.cpp's row order, and its tokenizer keys; q8_0 gives logits close by;
//! - the tiny `llama/llama` (untied head, grouped-query attention, q/k permuted) and
//!   `llama/qwen2` (biases, tied, written as `qwen2`) fixtures round trip with the same logits;
//! - `gguf_export/readers.json`: what gguf-py, `transformers` and llama.cpp read from our
//!   export of the same tiny models (`make_gguf_export_reference.py`): the layout, a checksum of
//!   each tensor's values in file order, the logits, which ours must equal (llama.cpp's: be
//!   close to), and llama.cpp's token ids for two texts. This catches what the round trips
//!   cannot: an export and an import wrong the same way (q/k rows not permuted at all, say);
//! - what is refused: Llama 3's rotary scaling, GPT-2, reward models.

use super::{hf_dir, max_diff, read_json, reference, run_ok, TOLERANCE};
use burn::prelude::*;
use rlhf::checkpoint;
use rlhf::data::tokenizer::Tok;
use rlhf::gguf::{GgufFile, Value};
use std::path::{Path, PathBuf};

fn export(ckpt: &Path, out: &Path, ty: &str) {
    run_ok(
        &["export", "--gguf-type", ty, "--ckpt"],
        &[ckpt, Path::new("--out"), out],
    );
}

fn import(from: &Path, out: &Path) {
    run_ok(&["import", "--from"], &[from, Path::new("--out"), out]);
}

fn logits(ckpt: &Path, ids: &[i64]) -> Vec<f32> {
    let m = checkpoint::load_lm(ckpt, &Device::flex()).unwrap().model;
    super::logits(&m, ids)
}

fn assert_bitwise(a: &[f32], b: &[f32], what: &str) {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert!(bits(a) == bits(b), "{what}: values differ in their bits");
}

/// A tiny fixture imported from its Hugging Face directory; the Llama without its Llama 3
/// rotary scaling unless `keep_scaling` (GGUF has no key for it).
fn tiny(d: &Path, family: &str, keep_scaling: bool) -> PathBuf {
    let hf = hf_dir(&d.join(family), &format!("llama/{family}"));
    if family == "llama" && !keep_scaling {
        let path = hf.join("config.json");
        let mut cfg = read_json(&path);
        cfg["rope_parameters"] = serde_json::json!({"rope_theta": 10000.0, "rope_type": "default"});
        std::fs::write(&path, cfg.to_string()).unwrap();
    }
    let ckpt = d.join(format!("{family}-ckpt"));
    run_ok(&["import-hf", "--dir"], &[&hf, Path::new("--out"), &ckpt]);
    ckpt
}

fn fixture_ids() -> Vec<i64> {
    let want = read_json(&reference().join("llama/llama/logits.json"));
    let ids = want["ids"].as_array().unwrap();
    ids.iter().map(|x| x.as_i64().unwrap()).collect()
}

#[test]
#[cfg_attr(
    no_smollm2,
    ignore = "RLHF_SMOLLM2_GGUF not set: see tests/gguf/smollm2.rs"
)]
fn smollm2_round_trips_through_gguf_f32_bitwise_and_q8_0_closely() {
    let src = PathBuf::from(std::env::var("RLHF_SMOLLM2_GGUF").unwrap());
    let d = crate::common::tmp_dir("gguf-export-smollm2");
    let (a, b, c) = (d.join("a"), d.join("b"), d.join("c"));
    import(&src, &a);
    let f32_file = d.join("smollm2-f32.gguf");
    export(&a, &f32_file, "f32");
    import(&f32_file, &b);
    crate::fixtures::assert_same_bytes(
        &a.join("model.safetensors"),
        &b.join("model.safetensors"),
        "f32 round trip",
    );
    let tok = |p: &Path| Tok::load(&p.join("tokenizer.json")).unwrap();
    let (ta, tb) = (tok(&a), tok(&b));
    assert!(ta.same_as(&tb).unwrap(), "the tokenizer changed");
    for text in [
        "<|im_start|>user\nWhat is 2+2? Say it in 3 words.<|im_end|>\n",
        "  Indented   spaces, naïve café, 12345 and ünïcödé ✓\n\n",
        "fn main() { println!(\"hi\"); } // it's done",
    ] {
        assert_eq!(ta.encode(text).unwrap(), tb.encode(text).unwrap(), "{text}");
    }
    let template = |p: &Path| std::fs::read(p.join(rlhf::data::tokenizer::CHAT_TEMPLATE)).unwrap();
    assert_eq!(template(&a), template(&b), "chat template");

    // the tokenizer keys are the source file's own (the source name its pre-tokenizer smollm)
    let (theirs, ours) = (
        GgufFile::open(&src).unwrap(),
        GgufFile::open(&f32_file).unwrap(),
    );
    for key in [
        "general.architecture",
        "llama.block_count",
        "llama.context_length",
        "llama.embedding_length",
        "llama.feed_forward_length",
        "llama.attention.head_count",
        "llama.attention.head_count_kv",
        "llama.rope.freq_base",
        "llama.rope.dimension_count",
        "llama.attention.layer_norm_rms_epsilon",
        "llama.vocab_size",
        "tokenizer.ggml.model",
        "tokenizer.ggml.pre",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.padding_token_id",
        "tokenizer.ggml.add_bos_token",
        "tokenizer.chat_template",
    ] {
        assert_eq!(ours.value(key), theirs.value(key), "{key}");
    }
    assert_eq!(ours.value("general.file_type"), Some(&Value::U32(0)));
    // every tensor holds the values llama.cpp's converter wrote, dequantised, in its row order
    let names = |g: &GgufFile| {
        g.tensors()
            .iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
    };
    let mut want_names = names(&theirs);
    want_names.sort();
    let mut got_names = names(&ours);
    got_names.sort();
    assert_eq!(got_names, want_names, "tensor names");
    for name in &want_names {
        let (t, o) = (
            theirs.tensor_f32(name).unwrap(),
            ours.tensor_f32(name).unwrap(),
        );
        assert_eq!(o.0, t.0, "{name}: shape");
        assert_bitwise(&o.1, &t.1, name);
    }

    let ids: Vec<i64> = ta
        .encode("<|im_start|>user\nWrite one sentence about the sea.<|im_end|>\n")
        .unwrap()
        .into_iter()
        .map(i64::from)
        .collect();
    let want = logits(&a, &ids);
    assert_bitwise(&logits(&b, &ids), &want, "f32 round trip");
    std::fs::remove_dir_all(&b).unwrap(); // 0.5 GB each: the disk is shared
    std::fs::remove_file(&f32_file).unwrap();

    let q8 = d.join("smollm2-q8_0.gguf");
    export(&a, &q8, "q8_0");
    import(&q8, &c);
    let got = logits(&c, &ids);
    let v = ta.vocab_size();
    let (diff, (pos, tok)) = max_diff(&got, &want, v);
    let rel = rel_rms(&got, &want, v);
    eprintln!("q8_0: max |Δlogit| = {diff:.3} at ({pos}, {tok}), relative RMS {rel:.4}");
    // Q8_0 moves each weight by up to 1/254 of its block's largest |w|; through 30 blocks that
    // is 3.5% of the logits' spread here (RMS; 0.67 at most, on logits up to ~38), and 6.7% as
    // transformers measures it between its readings of the source file and of our q8_0 export
    // on another 21-token prompt (f16: 0.2%).
    // 0.15 is about twice that: it catches gross errors (every layer's q/k rows left in
    // transformers' order: 217%), the f32 round trip above and the tiny models' q8_0 file read
    // by transformers (outside_readers_...) the fine ones
    assert!(rel < 0.15, "q8_0 logits differ by {rel} (relative RMS)");
    // 1.7 GB of checkpoints and files: kept only when the test fails
    std::fs::remove_dir_all(&d).unwrap();
}

/// ‖a − b‖ / ‖b − its row means‖ over (T, V) logits: the error relative to the logits' spread
/// (NaN, so over any tolerance, when either holds a NaN).
fn rel_rms(a: &[f32], b: &[f32], v: usize) -> f32 {
    let (mut err, mut spread) = (0.0f64, 0.0f64);
    for (ra, rb) in a.chunks(v).zip(b.chunks(v)) {
        let mean = rb.iter().map(|&x| f64::from(x)).sum::<f64>() / v as f64;
        for (&x, &y) in ra.iter().zip(rb) {
            err += (f64::from(x) - f64::from(y)).powi(2);
            spread += (f64::from(y) - mean).powi(2);
        }
    }
    (err / spread).sqrt() as f32
}

#[test]
fn tiny_llama_and_qwen2_round_trip_through_gguf_with_the_same_logits() {
    let ids = fixture_ids();
    let d = crate::common::tmp_dir("gguf-export-tiny");
    for (family, arch, untied) in [("llama", "llama", true), ("qwen2", "qwen2", false)] {
        let ckpt = tiny(&d, family, false);
        let file = d.join(format!("{family}.gguf"));
        export(&ckpt, &file, "f32");
        let g = GgufFile::open(&file).unwrap();
        assert_eq!(g.get_str("general.architecture").unwrap(), arch);
        assert_eq!(g.tensor("output.weight").is_ok(), untied, "{family}");
        let back = d.join(format!("{family}-back"));
        import(&file, &back);
        assert_bitwise(&logits(&back, &ids), &logits(&ckpt, &ids), family);
        let tok = |p: &Path| Tok::load(&p.join("tokenizer.json")).unwrap();
        let (a, b) = (tok(&ckpt), tok(&back));
        let text = "Emma Woodhouse, handsome, clever, and rich<|endoftext|> 1816\n";
        assert_eq!(a.encode(text).unwrap(), b.encode(text).unwrap(), "{family}");
        assert_eq!(b.inner.id_to_token(b.eot).as_deref(), Some("<|endoftext|>"));
        assert_eq!(
            b.decode(&[b.eot]).unwrap(),
            "",
            "{family}: EOT is not special"
        );
    }
}

/// Our export of the tiny models as gguf-py, `transformers` and llama.cpp read it: the same
/// layout, our import's logits equal to `transformers`' from the same file and close to
/// llama.cpp's, and llama.cpp's tokenizer splitting texts as ours does.
#[test]
fn outside_readers_read_our_gguf_export_as_we_do() {
    let want = read_json(&reference().join("gguf_export/readers.json"));
    let ids: Vec<i64> = want["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(ids, fixture_ids());
    let cols = want["cols"].as_u64().unwrap() as usize;
    let d = crate::common::tmp_dir("gguf-export-readers");
    for case in want["cases"].as_array().unwrap() {
        let (family, ty) = (
            case["family"].as_str().unwrap(),
            case["gguf_type"].as_str().unwrap(),
        );
        let what = format!("{family} {ty}");
        let ckpt = d.join(format!("{family}-ckpt"));
        if !ckpt.exists() {
            tiny(&d, family, false);
        }
        let file = d.join(format!("{family}-{ty}.gguf"));
        export(&ckpt, &file, ty);
        check_layout(&GgufFile::open(&file).unwrap(), case, &what);
        let back = d.join(format!("{family}-{ty}-back"));
        import(&file, &back);
        let ours = logits(&back, &ids);
        let v = ours.len() / ids.len();
        let ours: Vec<f32> = ours.chunks(v).flat_map(|r| r[..cols].to_vec()).collect();
        let theirs = flat(&case["logits"]);
        assert!(theirs.iter().any(|x| x.abs() > 1.0), "{what}: logits ~0");
        let (diff, (pos, tok)) = max_diff(&ours, &theirs, cols);
        eprintln!("{what}: max |ours - transformers| = {diff:.2e} at ({pos}, {tok})");
        assert!(diff < TOLERANCE, "{what}: logits differ by {diff}");

        // llama.cpp computes from the same weights but rounds the activations to the weights'
        // type before each matmul (ggml's vec_dot for F16 and Q8_0 takes both sides in that
        // type): measured 2e-6 (f32), 2e-3 (f16) and 0.11 (q8_0) on logits up to 3.7
        let bound = match ty {
            "f32" => TOLERANCE,
            "f16" => 1e-2,
            _ => 0.3,
        };
        let (diff, (pos, tok)) = max_diff(&ours, &flat(&case["llama_cpp_logits"]), cols);
        eprintln!("{what}: max |ours - llama.cpp| = {diff:.2e} at ({pos}, {tok})");
        assert!(diff < bound, "{what}: llama.cpp's logits differ by {diff}");
        let tok = Tok::load(&back.join("tokenizer.json")).unwrap();
        for (text, ids) in want["texts"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["llama_cpp_tokens"].as_array().unwrap())
        {
            let theirs: Vec<u32> = ids
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect();
            let text = text.as_str().unwrap();
            assert_eq!(
                tok.encode(text).unwrap(),
                theirs,
                "{what}: llama.cpp's ids of {text:?}"
            );
        }
    }
}

/// A JSON matrix, flattened row by row.
fn flat(m: &serde_json::Value) -> Vec<f32> {
    m.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter())
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// The architecture, shape keys, tensor names, types and ggml dimensions gguf-py read.
fn check_layout(g: &GgufFile, case: &serde_json::Value, what: &str) {
    assert_eq!(
        g.get_str("general.architecture").unwrap(),
        case["architecture"].as_str().unwrap(),
        "{what}"
    );
    for (k, v) in case["keys"].as_object().unwrap() {
        let ours = g.value(k).unwrap_or_else(|| panic!("{what}: no key {k}"));
        let same = match (ours, v) {
            (Value::String(s), serde_json::Value::String(t)) => s == t,
            (Value::U32(x), _) => v.as_u64() == Some(u64::from(*x)),
            (Value::F32(x), _) => v.as_f64() == Some(f64::from(*x)),
            _ => false,
        };
        assert!(same, "{what}: {k} is {ours:?}, gguf-py read {v}");
    }
    let theirs = case["tensors"].as_array().unwrap();
    assert_eq!(g.tensors().len(), theirs.len(), "{what}: tensor count");
    for (t, want) in g.tensors().iter().zip(theirs) {
        let ne: Vec<u64> = want[2]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        let (name, ty) = (want[0].as_str().unwrap(), want[1].as_str().unwrap());
        assert_eq!(
            (t.name.as_str(), t.ggml_type.name().as_str(), &t.ne),
            (name, ty, &ne),
            "{what}: tensor"
        );
        let (_, v) = g.tensor_f32(&t.name).unwrap();
        let (sum, scale) = checksum(&v);
        let want = want[3].as_f64().unwrap();
        // f64 sums of the same f32 values in another order: ~1e-15 relative
        assert!(
            (sum - want).abs() <= 1e-9 * scale,
            "{what}: {name} holds other values or another order: checksum {sum}, gguf-py {want}"
        );
    }
}

/// The script's `checksum`: Σ v_i·(1 + i mod 97) in f64, and Σ |v_i·(1 + i mod 97)| for scale.
fn checksum(v: &[f32]) -> (f64, f64) {
    v.iter().enumerate().fold((0.0, 0.0), |(s, a), (i, &x)| {
        let t = f64::from(x) * (1 + i % 97) as f64;
        (s + t, a + t.abs())
    })
}

#[test]
fn export_refuses_rope_scaling_gpt2_and_reward_models_and_infers_the_format() {
    let d = crate::common::tmp_dir("gguf-export-refused");
    let fails = |ckpt: &Path, out: &Path, extra: &[&str], expect: &str| {
        let o = super::super::rlhf_cmd()
            .args(["export", "--ckpt"])
            .arg(ckpt)
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success(),
            "export of {} succeeded",
            ckpt.display()
        );
        assert!(err.contains(expect), "expected '{expect}' in:\n{err}");
        assert!(!out.exists(), "{} was written", out.display());
    };
    let scaled = tiny(&d, "llama", true);
    fails(&scaled, &d.join("s.gguf"), &[], "rotary scaling");

    let gpt2 = d.join("gpt2");
    let hf = hf_dir(&d.join("gpt2-hf"), "model");
    run_ok(&["import-hf", "--dir"], &[&hf, Path::new("--out"), &gpt2]);
    fails(&gpt2, &d.join("g.gguf"), &[], "is a GPT-2 model");
    // a directory is an hf export, where --gguf-type has no meaning; given .gguf, gguf
    fails(
        &gpt2,
        &d.join("g-hf"),
        &["--gguf-type", "f16"],
        "--gguf-type",
    );
    run_ok(
        &["export", "--ckpt"],
        &[&gpt2, Path::new("--out"), &d.join("g-hf")],
    );
    assert!(d.join("g-hf/config.json").is_file(), "no hf export");
    let tiny_llama = tiny(&d, "qwen2", false);
    fails(
        &tiny_llama,
        &d.join("q"),
        &["--format", "gguf", "--gguf-type", "q4_0"],
        "invalid value 'q4_0'",
    );

    let rm = d.join("rm");
    let tok = crate::common::tok();
    let cfg = super::super::tiny_config(tok.vocab_size());
    let model =
        rlhf::model::RewardModel::new(&cfg, &mut rlhf::model::InitRng::new(0), &Device::flex());
    super::super::save_ckpt(&rm, &model, checkpoint::CheckpointKind::Rm, &cfg);
    fails(&rm, &d.join("rm.gguf"), &[], "GGUF holds language models");
}
