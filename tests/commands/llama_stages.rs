//! Every stage on the Llama family: the tiny job with `--arch llama` (the tiny preset's shape as
//! a Llama: RMSNorm, rotary positions, SwiGLU, grouped-query attention with 2 key/value heads
//! for 4 heads), shortened, through pretraining, SFT, sampling, labels, the RM, PPO-ptx, eval
//! and the report, then best-of-n, RLOO and DPO on the frontier — on the CPU and on wgpu (where
//! the frontier's methods, 4 more minutes on lavapipe, are left to the CPU run: they use no op
//! the others do not).

use crate::common;
use std::path::Path;
use std::process::Command;

fn run(device: &str, out: &Path, more: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "pipeline", "--preset", "tiny", "--arch", "llama", "--device", device,
        ])
        .args([
            "--pretrain-steps",
            "10",
            "--sft-steps",
            "6",
            "--rm-steps",
            "6",
        ])
        .args(["--ppo-steps", "2"])
        .args(more)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        o.status.success(),
        "pipeline --arch llama on {device} failed:\n{err}"
    );
    err
}

fn check(out: &Path, frontier: bool) {
    for f in [
        "pretrain/ckpt/model.safetensors",
        "sft/ckpt/model.safetensors",
        "rm/ckpt/model.safetensors",
        "ppo/ckpt/model.safetensors",
        "eval/eval.json",
        "report.md",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    // the checkpoints hold a Llama under transformers' names, not a GPT-2
    let names = rlhf::hf::weights::read_safetensors(&out.join("sft/ckpt/model.safetensors"))
        .unwrap()
        .into_keys()
        .collect::<Vec<_>>();
    assert!(
        names
            .iter()
            .any(|n| n == "model.layers.1.self_attn.k_proj.weight"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("wpe")), "{names:?}");
    let cfg = std::fs::read_to_string(out.join("ppo/ckpt/config.json")).unwrap();
    assert!(cfg.contains("\"n_kv_head\": 2"), "{cfg}");
    if frontier {
        for f in ["dpo/ckpt/model.safetensors", "rloo/ckpt/model.safetensors"] {
            assert!(out.join(f).is_file(), "missing {f}");
        }
        let report = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(
            report.contains("best-of-"),
            "the frontier lacks best-of-n:\n{report}"
        );
    }
}

#[test]
fn every_stage_runs_on_a_llama_on_the_cpu() {
    let out = common::tmp_dir("llama-cpu").join("run");
    run("cpu", &out, &["--compare", "bon,rloo,dpo"]);
    check(&out, true);
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn every_stage_runs_on_a_llama_on_wgpu() {
    common::wgpu_device(); // fails the test with wgpu's reason when there is no adapter
    let out = common::tmp_dir("llama-wgpu").join("run");
    run("wgpu", &out, &[]);
    check(&out, false);
}

/// `--base`: the job starts from an imported model (here the tiny `LlamaForCausalLM` that
/// `transformers` saved, with the tests' tokenizer) instead of training a tokenizer and
/// pretraining: the import stage writes `base/`, SFT starts from it, every later stage runs.
#[test]
fn pipeline_base_starts_from_an_imported_model() {
    let d = common::tmp_dir("pipeline-base");
    let hf = d.join("hf");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hf_reference/llama/llama");
    crate::fixtures::copy_dir(&fixture, &hf);
    common::tok().save(&hf.join("tokenizer.json")).unwrap();
    let out = d.join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["pipeline", "--preset", "tiny", "--device", "cpu", "--base"])
        .arg(&hf)
        .args([
            "--sft-steps",
            "4",
            "--rm-steps",
            "4",
            "--ppo-steps",
            "1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "pipeline --base failed:\n{err}");
    assert!(err.contains("import: done"), "{err}");
    assert!(!err.contains("pretrain"), "a --base job pretrained:\n{err}");
    assert!(!out.join("pretrain").exists() && !out.join("tokenizer.json").exists());
    for f in [
        "base/model.safetensors",
        "sft/ckpt/model.safetensors",
        "report.md",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let sft: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sft/ckpt/config.json")).unwrap())
            .unwrap();
    assert_eq!(
        sft["model"]["family"]["llama"]["intermediate_size"], 48,
        "{sft}"
    );
}
