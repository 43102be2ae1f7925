//! Bad input everywhere, through the binary: every file of `tests/bad_inputs/` and every broken
//! checkpoint made here gives exit code 1, a message with the file (and line, or tensor name)
//! and the reason, no panic, and no output that looks complete. Also: over-long prompts are cut
//! from the left with a counted warning, a missing adapter and a failed device allocation are
//! clear messages, and a backend panic becomes a message with a hint (exit code 3).

mod common;
mod fixtures;

use fixtures::{ok, rlhf, s};
use std::path::{Path, PathBuf};

/// One row of the table: the command (placeholders below), what the message must contain.
struct Case {
    /// `{bad}` = tests/bad_inputs/<file>, `{ckpt}` a good tiny LM checkpoint, `{ck}` the broken
    /// checkpoints' directory, `{tok}`, `{corpus}`, `{dir}` scratch, `{out}` the output to check.
    cmd: &'static str,
    file: &'static str,
    expect: &'static [&'static str],
}

const SFT: &str = "sft --device cpu --init {ckpt} --data {bad} --out {out}";
const RM: &str = "rm --device cpu --init {ckpt} --data {bad} --out {out}";
const LABEL: &str = "label --samples {bad} --out {out}";
const SAMPLE: &str = "sample --device cpu --ckpt {ckpt} --prompts {bad} --out {out}";
const PRE: &str =
    "pretrain --device cpu --preset tiny --steps 2 --corpus {bad} --tokenizer {tok} --out {out}";
const PRE_TOK: &str =
    "pretrain --device cpu --preset tiny --steps 2 --corpus {corpus} --tokenizer {bad} --out {out}";
const PRE_PRESET: &str =
    "pretrain --device cpu --preset {bad} --steps 2 --corpus {corpus} --tokenizer {tok} --out {out}";

const fn case(cmd: &'static str, file: &'static str, expect: &'static [&'static str]) -> Case {
    Case { cmd, file, expect }
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    case(SFT, "sft_malformed_json.jsonl", &["sft_malformed_json.jsonl:2: malformed JSON"]),
    case(SFT, "sft_wrong_type.jsonl", &["sft_wrong_type.jsonl:1", "field \"response\" must be a string, found a number"]),
    case(SFT, "sft_missing_field.jsonl", &["sft_missing_field.jsonl:3", "missing field \"response\""]),
    case(SFT, "sft_empty_response.jsonl", &["sft_empty_response.jsonl:1", "empty response"]),
    case(SFT, "sft_empty_prompt.jsonl", &["sft_empty_prompt.jsonl:1", "empty prompt"]),
    case(SFT, "sft_not_an_object.jsonl", &["sft_not_an_object.jsonl:1: expected a JSON object, found an array"]),
    case(SFT, "sft_non_utf8.jsonl", &["sft_non_utf8.jsonl:2: not valid UTF-8"]),
    case(SFT, "sft_empty_file.jsonl", &["sft_empty_file.jsonl: no records"]),
    case(SFT, "sft_alpaca_null_output.jsonl", &["sft_alpaca_null_output.jsonl:1", "field \"output\" must be a string, found null"]),
    case(SFT, "sft_unknown_format.jsonl", &["sft_unknown_format.jsonl:1", "expected {\"prompt\",\"response\"}, {\"messages\"}, Alpaca"]),
    case(SFT, "sft_conversation_two_users.jsonl", &["sft_conversation_two_users.jsonl:2", "messages[3] is user where assistant was expected"]),
    case(SFT, "sft_conversation_unknown_role.jsonl", &["sft_conversation_unknown_role.jsonl:1", "messages[1]: unknown role \"bot\""]),
    case(SFT, "sft_conversation_empty_turn.jsonl", &["sft_conversation_empty_turn.jsonl:1", "messages[1] (assistant) has empty content"]),
    case(SFT, "sft_truncated_last_line.jsonl", &["sft_truncated_last_line.jsonl:2: malformed JSON", "EOF"]),
    case(RM, "rank_one_response.jsonl", &["rank_one_response.jsonl:1", "at least 2 responses, found 1", "--skip-invalid"]),
    case(RM, "rank_ten_responses.jsonl", &["rank_ten_responses.jsonl:1", "at most 9 responses per prompt are supported, found 10"]),
    case(RM, "rank_duplicate_responses.jsonl", &["rank_duplicate_responses.jsonl:2", "responses 0 and 1 are the same text"]),
    case(RM, "rank_responses_not_array.jsonl", &["rank_responses_not_array.jsonl:1", "field \"responses\" must be an array"]),
    case(RM, "rank_response_number.jsonl", &["rank_response_number.jsonl:1", "responses[1] must be a string"]),
    case(RM, "rank_hh_no_shared_prefix.jsonl", &["rank_hh_no_shared_prefix.jsonl:1", "share no prompt prefix"]),
    case(RM, "rank_missing_rejected.jsonl", &["rank_missing_rejected.jsonl:1", "missing field \"rejected\""]),
    case(RM, "rank_non_utf8.jsonl", &["rank_non_utf8.jsonl:1: not valid UTF-8"]),
    case(RM, "rank_malformed_json.jsonl", &["rank_malformed_json.jsonl:1: malformed JSON"]),
    case(RM, "rank_empty_response.jsonl", &["rank_empty_response.jsonl:1", "response 1 is empty"]),
    case(LABEL, "samples_responses_string.jsonl", &["samples_responses_string.jsonl:1", "field \"responses\" must be an array, found a string"]),
    case(LABEL, "samples_missing_prompt.jsonl", &["samples_missing_prompt.jsonl:1", "missing field \"prompt\""]),
    case(SAMPLE, "prompts_blank_only.jsonl", &["prompts_blank_only.jsonl: no prompts"]),
    case(SAMPLE, "prompts_number.jsonl", &["prompts_number.jsonl:1", "field \"prompt\" must be a string or an array of messages, found a number"]),
    case(SAMPLE, "prompts_conversation_ends_assistant.jsonl", &["prompts_conversation_ends_assistant.jsonl:1", "must end with a user message"]),
    case(SAMPLE, "prompts_top_level_string.jsonl", &["prompts_top_level_string.jsonl:1: expected a JSON object, found a string"]),
    case(PRE, "corpus_non_utf8.txt", &["corpus_non_utf8.txt:3: not valid UTF-8 (byte offset"]),
    case(PRE, "corpus_empty.txt", &["corpus_empty.txt: the file is empty"]),
    case(PRE_TOK, "tokenizer_malformed.json", &["loading tokenizer", "tokenizer_malformed.json"]),
    case(PRE_TOK, "tokenizer_no_eot.json", &["tokenizer_no_eot.json has no '<|endoftext|>' token"]),
    case(PRE_PRESET, "preset_heads_do_not_divide.toml", &["n_embd (64) must be divisible by n_head (5)"]),
    case(PRE_PRESET, "preset_wrong_type.toml", &["parsing preset", "preset_wrong_type.toml", "n_layer"]),
    // missing files
    case("sft --device cpu --init {ckpt} --data {dir}/nope.jsonl --out {out}", "", &["opening", "nope.jsonl", "No such file"]),
    case("pretrain --device cpu --preset tiny --corpus {dir}/nope.txt --tokenizer {tok} --out {out}", "", &["reading", "nope.txt", "No such file"]),
    case("pretrain --device cpu --preset tiny --corpus {corpus} --tokenizer {dir}/nope.json --out {out}", "", &["loading tokenizer", "nope.json"]),
    case("sample --device cpu --ckpt {dir}/no_ckpt --prompts {bad} --out {out}", "prompts_number.jsonl", &["no_ckpt does not exist"]),
    case("sample --device cpu --ckpt {dir} --prompts {bad} --out {out}", "prompts_number.jsonl", &["is not a checkpoint (no model.safetensors"]),
    // broken checkpoints (made by `broken_checkpoints`)
    case("sample --device cpu --ckpt {ck}/garbage --prompts {bad} --out {out}", "prompts_number.jsonl", &["garbage/model.safetensors: not a readable safetensors file", "corrupt or truncated"]),
    case("sample --device cpu --ckpt {ck}/truncated --prompts {bad} --out {out}", "prompts_number.jsonl", &["truncated/model.safetensors: not a readable safetensors file"]),
    case("sample --device cpu --ckpt {ck}/deeper --prompts {bad} --out {out}", "prompts_number.jsonl", &["deeper/model.safetensors: missing tensors", "h.2.attn.c_attn.bias", "another architecture"]),
    case("sample --device cpu --ckpt {ck}/shorter_ctx --prompts {bad} --out {out}", "prompts_number.jsonl", &["shorter_ctx/model.safetensors: Shape mismatch for 'wpe.weight'"]),
    case("sample --device cpu --ckpt {ck}/nan --prompts {bad} --out {out}", "prompts_number.jsonl", &["nan/model.safetensors: not loading it", "1 tensor(s) hold NaN or infinite values (wte.weight)"]),
    case("sample --device cpu --ckpt {ck}/other_tokenizer --prompts {bad} --out {out}", "prompts_number.jsonl", &["tokenizer has 300 tokens but the model's vocabulary is 512"]),
    case("sample --device cpu --ckpt {ck}/bad_config --prompts {bad} --out {out}", "prompts_number.jsonl", &["parsing", "bad_config/config.json"]),
    case("score --device cpu --rm {ckpt} --data {bad} --out {out}", "prompts_number.jsonl", &["is a 'lm' checkpoint, not a reward model"]),
    // PPO settings that would panic or train off-policy mid-run are refused before any work
    case("ppo --device cpu --policy {ckpt} --reward-token , --prompts {dir}/p.jsonl --reward-clip=-1 --out {out}", "", &["reward clip must be a finite number > 0", "got -1"]),
    case("ppo --device cpu --policy {ckpt} --reward-token , --prompts {dir}/p.jsonl --reward-clip=NaN --out {out}", "", &["reward clip must be a finite number > 0", "got NaN"]),
    case("ppo --device cpu --policy {ckpt} --reward-token , --prompts {dir}/p.jsonl --temperature=0 --out {out}", "", &["temperature must be a finite number > 0", "got 0"]),
    case("pretrain --device cpu --preset tiny --n-layer 3 --corpus {corpus} --tokenizer {tok} --resume --out {ck}/resume_dir", "", &["cannot resume from", "resume_dir/ckpt", "n_layer: 2", "n_layer: 3"]),
];

struct World {
    dir: PathBuf,
    ckpt: PathBuf,
    ck: PathBuf,
    tok: PathBuf,
    corpus: PathBuf,
}

/// A good tiny checkpoint, then broken copies of it under `ck/`.
fn world() -> World {
    let d = common::tmp_dir("bad-inputs");
    let inp = fixtures::inputs(&d.join("in"), &common::tok());
    let good = d.join("good");
    fixtures::tiny_pretrain(&inp, &good, 2);
    let ck = d.join("ck");
    broken_checkpoints(&good.join("ckpt"), &ck);
    let resume = ck.join("resume_dir");
    std::fs::create_dir_all(&resume).unwrap();
    copy_dir(&good.join("ckpt"), &resume.join("ckpt"));
    World {
        dir: d.clone(),
        ckpt: good,
        ck,
        tok: inp.tok,
        corpus: inp.corpus,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

fn broken_checkpoints(good: &Path, ck: &Path) {
    let make = |name: &str, f: &dyn Fn(&Path)| {
        let p = ck.join(name);
        copy_dir(good, &p);
        f(&p);
    };
    let edit_config = |p: &Path, from: &str, to: &str| {
        let c = std::fs::read_to_string(p.join("config.json")).unwrap();
        assert!(c.contains(from), "{c}");
        std::fs::write(p.join("config.json"), c.replace(from, to)).unwrap();
    };
    make("garbage", &|p| {
        std::fs::write(p.join("model.safetensors"), "not a safetensors file").unwrap()
    });
    make("truncated", &|p| {
        let b = std::fs::read(p.join("model.safetensors")).unwrap();
        std::fs::write(p.join("model.safetensors"), &b[..b.len() / 2]).unwrap();
    });
    make("deeper", &|p| {
        edit_config(p, "\"n_layer\": 2", "\"n_layer\": 3")
    });
    make("shorter_ctx", &|p| {
        edit_config(p, "\"n_ctx\": 64", "\"n_ctx\": 32")
    });
    make("bad_config", &|p| {
        std::fs::write(p.join("config.json"), "{\"kind\": \"lm\",").unwrap()
    });
    make("nan", &|p| {
        // overwrite the first value of wte.weight with a NaN, in place
        let f = p.join("model.safetensors");
        let mut b = std::fs::read(&f).unwrap();
        let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
        let off = header["wte.weight"]["data_offsets"][0].as_u64().unwrap() as usize;
        b[8 + n + off..8 + n + off + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        std::fs::write(&f, b).unwrap();
    });
    make("other_tokenizer", &|p| {
        let text = std::fs::read_to_string(common::assets().join("austen/emma.txt")).unwrap();
        let f = p.join("corpus.txt");
        std::fs::write(&f, text.chars().take(50_000).collect::<String>()).unwrap();
        let t = rlhf::data::tokenizer::train(std::slice::from_ref(&f), 300).unwrap();
        t.save(&p.join("tokenizer.json")).unwrap();
        std::fs::remove_file(f).unwrap();
    });
}

fn expand(cmd: &str, w: &World, file: &str, out: &Path) -> Vec<String> {
    let bad = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bad_inputs")
        .join(file);
    cmd.split_whitespace()
        .map(|a| {
            a.replace("{bad}", s(&bad))
                .replace("{ckpt}", s(&w.ckpt))
                .replace("{ck}", s(&w.ck))
                .replace("{tok}", s(&w.tok))
                .replace("{corpus}", s(&w.corpus))
                .replace("{dir}", s(&w.dir))
                .replace("{out}", s(out))
        })
        .collect()
}

#[test]
fn every_bad_input_is_a_clear_error_with_exit_code_1_and_no_output() {
    let w = world();
    let files: Vec<&str> = CASES
        .iter()
        .map(|c| c.file)
        .filter(|f| !f.is_empty())
        .collect();
    let on_disk =
        std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs"))
            .unwrap()
            .count();
    assert!(on_disk >= 20, "{on_disk} files in tests/bad_inputs");
    let mut failures = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let out = w.dir.join(format!("out{i}"));
        let args = expand(c.cmd, &w, c.file, &out);
        let o = rlhf().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let mut why = Vec::new();
        if o.status.code() != Some(1) {
            why.push(format!("exit status {:?}", o.status));
        }
        for e in c.expect {
            if !err.contains(e) {
                why.push(format!("no '{e}'"));
            }
        }
        if err.contains("panicked") {
            why.push("panicked".into());
        }
        // nothing that looks like a finished output: no file, no checkpoint, no summary
        if out.is_file() || out.join("ckpt").exists() || out.join("summary.json").exists() {
            why.push(format!("{} was written", out.display()));
        }
        if !why.is_empty() {
            failures.push(format!(
                "case {i} `{}` {}: {}\n{err}",
                c.cmd,
                c.file,
                why.join(", ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    // every file of the corpus is used by some case
    for e in std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs"))
        .unwrap()
    {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(files.contains(&name.as_str()), "{name} is in no case");
    }
    // the resume case refused before touching the checkpoint it found
    assert_eq!(
        fixtures::ckpt_step(&w.ck.join("resume_dir")),
        Some((2, true))
    );
}

#[test]
fn overlong_prompts_are_cut_from_the_left_with_a_counted_warning() {
    let d = common::tmp_dir("overlong");
    let inp = fixtures::inputs(&d.join("in"), &common::tok());
    fixtures::tiny_pretrain(&inp, &d.join("m"), 2);
    let prompts = d.join("prompts.jsonl");
    let long = "It is a truth universally acknowledged, that a single man in possession of a good \
                fortune, must be in want of a wife. "
        .repeat(8);
    let body = format!(
        "{{\"prompt\":\"Define: Cat\"}}\n{}\n",
        serde_json::json!({ "prompt": long })
    );
    std::fs::write(&prompts, body).unwrap();
    let out = d.join("samples.jsonl");
    let err = ok(&rlhf()
        .args([
            "sample",
            "--device",
            "cpu",
            "-k",
            "2",
            "--max-new-tokens",
            "8",
            "--ckpt",
        ])
        .arg(d.join("m"))
        .arg("--prompts")
        .arg(&prompts)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    // tiny: n_ctx 64, 8 of them kept for the response → 56 prompt tokens
    assert!(
        err.contains("sample: warning: 1 of 2 prompts are longer than the 56 tokens the context leaves beside --max-new-tokens 8 and were cut from the left"),
        "{err}"
    );
    let samples = rlhf::data::formats::read_samples(&out).unwrap();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[1].prompt, long, "the record keeps the whole prompt");
    assert!(samples.iter().all(|s| s.responses.len() == 2));
}

#[test]
fn a_backend_panic_is_a_message_with_a_hint_and_exit_code_3() {
    let cases = [
        (
            "Parent device is lost",
            "hint: the GPU device was lost",
            "--resume",
        ),
        (
            "Unable to allocate buffer: OutOfMemory",
            "hint: the device could not satisfy a memory allocation",
            "--batch-size",
        ),
        (
            "No suitable adapter found",
            "hint: no usable GPU adapter",
            "--device cpu",
        ),
    ];
    for (msg, hint, flag) in cases {
        let o = rlhf()
            .args(["devices"])
            .env("RLHF_INJECT_PANIC", msg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{err}");
        assert!(
            err.contains(&format!("error: the computation failed: {msg}")),
            "{err}"
        );
        assert!(err.contains(hint) && err.contains(flag), "{err}");
        assert!(
            !err.contains("panicked at") && !err.contains("stack backtrace"),
            "{err}"
        );
    }
}

#[test]
fn no_adapter_is_a_clear_error_and_auto_falls_back_to_the_cpu() {
    // the Vulkan loader finds no driver at all
    let o = rlhf()
        .args([
            "bench",
            "train",
            "--preset",
            "tiny",
            "--steps",
            "1",
            "--batch-size",
            "2",
            "--device",
            "vulkan",
        ])
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no wgpu adapter matches --device Vulkan (no wgpu adapters at all); try `rlhf devices`, or --device cpu"),
        "{err}"
    );
    let o = rlhf()
        .args([
            "bench",
            "train",
            "--preset",
            "tiny",
            "--steps",
            "1",
            "--batch-size",
            "2",
        ])
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .output()
        .unwrap();
    let err = ok(&o);
    assert!(
        err.contains("no hardware GPU adapter found") && err.contains("using the CPU backend"),
        "{err}"
    );
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn an_allocation_the_device_cannot_satisfy_is_a_clear_message() {
    common::wgpu_device(); // fails the test with wgpu's reason when there is no adapter
                           // 65536 × 64 tokens wants a 32 GiB buffer; the address-space cap makes the driver refuse
                           // it at once instead of letting it try
    let o = std::process::Command::new("sh")
        .args(["-c", "ulimit -v 4000000 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_rlhf"))
        .args([
            "bench",
            "train",
            "--preset",
            "tiny",
            "--batch-size",
            "65536",
            "--steps",
            "1",
            "--device",
            "wgpu",
        ])
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    // the status in the message: a kill by a signal shows as such
    assert_eq!(o.status.code(), Some(3), "{err} ({})", o.status);
    assert!(err.contains("error: the computation failed"), "{err}");
    assert!(
        err.contains(
            "hint: the device could not satisfy a memory allocation: try a smaller --batch-size"
        ),
        "{err}"
    );
    assert!(!err.contains("panicked at"), "{err}");
}
