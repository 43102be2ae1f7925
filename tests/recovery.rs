//! Crash safety and the numerical guard, through the binary as a user runs it, on the CPU:
//!
//! - pretrain, SFT and RM of the tiny preset are SIGKILLed mid-run once a checkpoint past step 0
//!   exists, resumed with `--resume`, and must end with the weights of an uninterrupted run,
//!   bitwise (every tensor equal; dropout 0.1 for the LM stages, so the dropout RNG is part of
//!   what resumes), as the README promises; PPO (ptx on, adaptive β) too, with its KL controller,
//!   and RLOO;
//! - a NaN injected through the `RLHF_INJECT_NAN_AT_STEP` test hook is skipped and logged with
//!   its step, changes nothing, and is never saved; N in a row stop the stage with a message
//!   naming the last good checkpoint, from which `--resume` finishes the stage;
//! - `checkpoint::save` refuses non-finite weights and keeps the previous checkpoint.

mod common;
mod fixtures;

use fixtures::{ckpt_step, max_abs_diff, ok, rlhf, s, Inputs};
use rlhf::model::{Gpt, InitRng};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Inputs and a 6-step tiny pretrained checkpoint (the init of the SFT and RM runs), made once.
fn setup() -> &'static (Inputs, PathBuf) {
    static S: OnceLock<(Inputs, PathBuf)> = OnceLock::new();
    S.get_or_init(|| {
        let d = common::tmp_dir("recovery");
        let inp = fixtures::inputs(&d.join("in"), &common::tok());
        let base = d.join("base");
        fixtures::tiny_pretrain(&inp, &base, 6);
        (inp, base)
    })
}

fn pretrain_args(inp: &Inputs) -> Vec<String> {
    let v = [
        "pretrain",
        "--device",
        "cpu",
        "--preset",
        "tiny",
        "--dropout",
        "0.1",
        "--corpus",
    ];
    let mut a: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    a.extend([
        s(&inp.corpus).into(),
        "--tokenizer".into(),
        s(&inp.tok).into(),
    ]);
    a.extend(
        [
            "--val-fraction",
            "0.1",
            "--batch-size",
            "8",
            "--eval-every",
            "20",
        ]
        .map(String::from),
    );
    a
}

fn with(mut a: Vec<String>, more: &[&str]) -> Vec<String> {
    a.extend(more.iter().map(|x| x.to_string()));
    a
}

/// Runs `args --out out`, SIGKILLs it as soon as a checkpoint past step 0 (and before the end)
/// exists, and returns the step of the checkpoint left behind.
fn run_and_kill(args: &[String], out: &Path) -> usize {
    let mut child = rlhf()
        .args(args)
        .arg("--out")
        .arg(out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if let Some((step, false)) = ckpt_step(out) {
            if step > 0 {
                child.kill().unwrap(); // SIGKILL on Unix
                child.wait().unwrap();
                break;
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the run ended ({st}) before it could be killed; raise --steps");
        }
        assert!(t0.elapsed() < Duration::from_secs(300), "no checkpoint");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (step, finished) = ckpt_step(out).expect("a checkpoint after the kill");
    assert!(step > 0 && !finished, "checkpoint at step {step}");
    step
}

/// Uninterrupted vs killed + resumed: returns (kill step, max |Δw|).
fn kill_resume_compare(args: Vec<String>, d: &Path) -> (usize, f32) {
    let (a, b) = (d.join("uninterrupted"), d.join("killed"));
    ok(&rlhf().args(&args).arg("--out").arg(&a).output().unwrap());
    let at = run_and_kill(&args, &b);
    let err = ok(&rlhf()
        .args(&args)
        .args(["--resume", "--out"])
        .arg(&b)
        .output()
        .unwrap());
    assert!(err.contains("resuming from"), "{err}");
    let diff = max_abs_diff(
        &a.join("ckpt/model.safetensors"),
        &b.join("ckpt/model.safetensors"),
    );
    eprintln!("killed at checkpoint step {at}, resumed: max |Δw| = {diff:e}");
    (at, diff)
}

#[test]
fn pretrain_killed_and_resumed_matches_uninterrupted() {
    let (inp, _) = setup();
    let d = common::tmp_dir("kill-pretrain");
    let args = with(
        pretrain_args(inp),
        &["--steps", "60", "--checkpoint-every", "5"],
    );
    let (at, diff) = kill_resume_compare(args, &d);
    assert!(at < 60);
    assert_eq!(diff, 0.0, "max |Δw| = {diff}");
}

#[test]
fn sft_killed_and_resumed_matches_uninterrupted() {
    let (inp, base) = setup();
    let d = common::tmp_dir("kill-sft");
    let args: Vec<String> = [
        "sft",
        "--device",
        "cpu",
        "--dropout",
        "0.1",
        "--init",
        s(base),
        "--data",
        s(&inp.sft),
        "--val-fraction",
        "0.1",
        "--batch-size",
        "8",
        "--steps",
        "60",
        "--checkpoint-every",
        "5",
        "--eval-every",
        "30",
    ]
    .map(String::from)
    .to_vec();
    let (_, diff) = kill_resume_compare(args, &d);
    assert_eq!(diff, 0.0, "max |Δw| = {diff}");
}

#[test]
fn rm_killed_and_resumed_matches_uninterrupted() {
    let (inp, base) = setup();
    let d = common::tmp_dir("kill-rm");
    let args: Vec<String> = [
        "rm",
        "--device",
        "cpu",
        "--init",
        s(base),
        "--data",
        s(&inp.rankings),
        "--batch-size",
        "4",
        "--steps",
        "60",
        "--checkpoint-every",
        "5",
        "--eval-every",
        "30",
    ]
    .map(String::from)
    .to_vec();
    let (_, diff) = kill_resume_compare(args.clone(), &d);
    assert_eq!(diff, 0.0, "max |Δw| = {diff}");
    // the final reward-model checkpoint carries the same normalisation (gain and bias)
    let norm = |p: PathBuf| -> (f64, f64) {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        (
            v["reward_gain"].as_f64().unwrap(),
            v["reward_bias"].as_f64().unwrap(),
        )
    };
    let a = d.join("uninterrupted/ckpt");
    assert_eq!(
        norm(a.join("config.json")),
        norm(d.join("killed/ckpt/config.json")),
        "normalisation (gain, bias)"
    );
    // resuming a finished, normalised RM changes nothing: normalising its already scaled head
    // again would give a gain of 1 only up to rounding
    let weights = std::fs::read(a.join("model.safetensors")).unwrap();
    let config = std::fs::read(a.join("config.json")).unwrap();
    ok(&rlhf()
        .args(&args)
        .args(["--resume", "--out"])
        .arg(d.join("uninterrupted"))
        .output()
        .unwrap());
    assert!(std::fs::read(a.join("model.safetensors")).unwrap() == weights);
    assert!(std::fs::read(a.join("config.json")).unwrap() == config);
}

#[test]
fn injected_nan_is_skipped_changes_nothing_and_is_never_saved() {
    let (inp, _) = setup();
    let d = common::tmp_dir("nan-skip");
    let args = with(
        pretrain_args(inp),
        &["--steps", "6", "--checkpoint-every", "3"],
    );
    // A: NaN from step 3 on, tolerated (10 in a row allowed): steps 3, 4, 5 are all skipped.
    let o = rlhf()
        .args(&args)
        .arg("--out")
        .arg(d.join("a"))
        .env("RLHF_INJECT_NAN_AT_STEP", "3-")
        .output()
        .unwrap();
    let err = ok(&o);
    for step in 3..6 {
        assert!(
            err.contains(&format!(
                "pretrain: step {step}: non-finite loss or gradient"
            )),
            "{err}"
        );
    }
    assert!(!err.contains("step 2: non-finite"), "{err}");
    let sum: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("a/summary.json")).unwrap()).unwrap();
    assert_eq!(sum["skipped_steps"], 3);
    assert!(fixtures::all_finite(&d.join("a/ckpt/model.safetensors")));
    // B: the same run stopped by the guard at the first NaN keeps its step-3 checkpoint, which
    // must equal A's final weights bit for bit: the skipped steps changed nothing.
    let o = rlhf()
        .args(&args)
        .args(["--max-bad-steps", "1", "--out"])
        .arg(d.join("b"))
        .env("RLHF_INJECT_NAN_AT_STEP", "3-")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(ckpt_step(&d.join("b")), Some((3, false)));
    let diff = max_abs_diff(
        &d.join("a/ckpt/model.safetensors"),
        &d.join("b/ckpt/model.safetensors"),
    );
    assert_eq!(diff, 0.0);
    // and a NaN changes the result at all: the run without one ends elsewhere
    ok(&rlhf()
        .args(&args)
        .arg("--out")
        .arg(d.join("c"))
        .output()
        .unwrap());
    let moved = max_abs_diff(
        &d.join("a/ckpt/model.safetensors"),
        &d.join("c/ckpt/model.safetensors"),
    );
    assert!(moved > 1e-4, "{moved}");
}

#[test]
fn consecutive_nans_stop_the_stage_pointing_at_the_last_good_checkpoint() {
    let (inp, _) = setup();
    let d = common::tmp_dir("nan-stop");
    let out = d.join("p");
    let args = with(
        pretrain_args(inp),
        &[
            "--steps",
            "12",
            "--checkpoint-every",
            "2",
            "--max-bad-steps",
            "3",
        ],
    );
    let o = rlhf()
        .args(&args)
        .arg("--out")
        .arg(&out)
        .env("RLHF_INJECT_NAN_AT_STEP", "4-")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // steps 4, 5 skipped; the checkpoint at step 6 holds the (finite) weights after step 3
    let want = format!(
        "pretrain: 3 consecutive non-finite losses or gradients (steps 4..=6), stopping; the last \
         good checkpoint is {} (step 6); rerun with --resume",
        out.join("ckpt").display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(ckpt_step(&out), Some((6, false)));
    assert!(fixtures::all_finite(&out.join("ckpt/model.safetensors")));
    // the cause gone, --resume finishes the stage from that checkpoint
    let err = ok(&rlhf()
        .args(&args)
        .args(["--resume", "--out"])
        .arg(&out)
        .output()
        .unwrap());
    assert!(err.contains("resuming from"), "{err}");
    assert_eq!(ckpt_step(&out), Some((12, true)));
}

#[test]
fn rm_guard_skips_and_stops_too() {
    let (inp, base) = setup();
    let d = common::tmp_dir("nan-rm");
    let args = |out: &Path, max_bad: &str| -> Vec<String> {
        [
            "rm",
            "--device",
            "cpu",
            "--init",
            s(base),
            "--data",
            s(&inp.rankings),
            "--batch-size",
            "4",
            "--steps",
            "8",
            "--checkpoint-every",
            "2",
            "--max-bad-steps",
            max_bad,
            "--out",
            s(out),
        ]
        .map(String::from)
        .to_vec()
    };
    let o = rlhf()
        .args(args(&d.join("skip"), "10"))
        .env("RLHF_INJECT_NAN_AT_STEP", "1,5")
        .output()
        .unwrap();
    let err = ok(&o);
    assert!(
        err.contains("rm: step 1: non-finite loss or gradient"),
        "{err}"
    );
    assert!(
        err.contains("rm: step 5: non-finite loss or gradient"),
        "{err}"
    );
    let sum: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("skip/summary.json")).unwrap())
            .unwrap();
    assert_eq!(sum["skipped_steps"], 2);
    assert!(fixtures::all_finite(&d.join("skip/ckpt/model.safetensors")));
    let o = rlhf()
        .args(args(&d.join("stop"), "2"))
        .env("RLHF_INJECT_NAN_AT_STEP", "3-")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("rm: 2 consecutive non-finite losses or gradients (steps 3..=4)"),
        "{err}"
    );
    assert!(err.contains("(step 4); rerun with --resume"), "{err}");
    assert!(fixtures::all_finite(&d.join("stop/ckpt/model.safetensors")));
}

#[test]
fn save_refuses_non_finite_weights_and_keeps_the_previous_checkpoint() {
    use burn::prelude::*;
    use rlhf::checkpoint::{self, CheckpointConfig, SaveRequest, TrainState};
    let d = common::tmp_dir("refuse");
    let tok = common::tok();
    let mut cfg = rlhf::config::ModelConfig::preset("tiny").unwrap();
    cfg.vocab_size = tok.vocab_size();
    let dev = Device::flex();
    let model = Gpt::new(&cfg, &mut InitRng::new(0), &dev);
    let config = CheckpointConfig {
        kind: rlhf::checkpoint::CheckpointKind::Lm,
        stage: "test".into(),
        model: cfg,
        reward_bias: None,
        reward_gain: None,
    };
    let state = |step| TrainState {
        step,
        rng: rlhf::util::rng::Rng::new(1),
        finished: false,
        extra: serde_json::Value::Null,
    };
    let (s1, s2) = (state(1), state(2));
    checkpoint::save(SaveRequest {
        dir: &d,
        model: &model,
        config: &config,
        tok: &tok,
        optim: None,
        state: &s1,
    })
    .unwrap();
    let mut bad = model.clone();
    bad.h[1].mlp.c_fc.weight = bad.h[1]
        .mlp
        .c_fc
        .weight
        .clone()
        .map(|w| w.slice_fill([0..1, 0..1], f32::INFINITY));
    let e = checkpoint::save(SaveRequest {
        dir: &d,
        model: &bad,
        config: &config,
        tok: &tok,
        optim: None,
        state: &s2,
    })
    .unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains("refusing to save a checkpoint") && e.contains("h.1.mlp.c_fc.weight"),
        "{e}"
    );
    assert_eq!(ckpt_step(&d), Some((1, false)));
    assert!(!d.join("ckpt.tmp").exists());
    assert!(fixtures::all_finite(&d.join("ckpt/model.safetensors")));
}

/// PPO arguments with the known token-count reward (no RM needed) and ptx on.
fn ppo_args(inp: &Inputs, base: &Path, d: &Path) -> Vec<String> {
    let prompts = d.join("prompts.jsonl");
    let lines: Vec<String> = [
        "Emma",
        "Harriet",
        "a letter",
        "the weather",
        "a walk",
        "Jane",
    ]
    .iter()
    .map(|w| format!("{{\"prompt\": \"Continue: She thought of {w}\"}}"))
    .collect();
    std::fs::write(&prompts, lines.join("\n")).unwrap();
    [
        "ppo",
        "--device",
        "cpu",
        "--policy",
        s(base),
        "--reward-token",
        ",",
        "--prompts",
        s(&prompts),
        "--ptx-coef",
        "1",
        "--ptx-corpus",
        s(&inp.corpus),
        "--steps",
        "8",
        "--rollout-batch",
        "8",
        "--minibatch",
        "4",
        "--max-new-tokens",
        "8",
        "--checkpoint-every",
        "1",
        "--policy-lr",
        "1e-3",
        "--value-lr",
        "1e-3",
        // adaptive β: the KL controller's state is part of what must resume
        "--kl-target",
        "2",
        "--kl-horizon",
        "64",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn ppo_killed_and_resumed_matches_uninterrupted() {
    let (inp, base) = setup();
    let d = common::tmp_dir("kill-ppo");
    let (_, diff) = kill_resume_compare(ppo_args(inp, base, &d), &d);
    assert_eq!(diff, 0.0, "policy: max |Δw| = {diff}");
    let v = max_abs_diff(
        &d.join("uninterrupted/ckpt/value/model.safetensors"),
        &d.join("killed/ckpt/value/model.safetensors"),
    );
    assert_eq!(v, 0.0, "value model: max |Δw| = {v}");
    // the KL controller (β, target, horizon) and the episode count resumed exactly
    let extra = |run: &str| -> serde_json::Value {
        let p = d.join(run).join("ckpt/train_state.json");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        v["extra"].clone()
    };
    let (a, b) = (extra("uninterrupted"), extra("killed"));
    assert!(a["kl"].is_object(), "{a}");
    assert_eq!(a, b, "PPO state after the resumed run");
    // β moved: the adaptive controller really ran
    let kl_coef = |run: &str| -> Vec<f64> {
        let (h, rows) = rlhf::train::metrics::read(&d.join(run).join("metrics.csv")).unwrap();
        let i = h.iter().position(|c| c == "ppo/kl_coef").unwrap();
        rows.iter().map(|r| r[i]).collect()
    };
    let (ka, kb) = (kl_coef("uninterrupted"), kl_coef("killed"));
    assert_eq!(ka, kb, "β per iteration");
    assert!(ka.first() != ka.last(), "β should adapt: {ka:?}");
}

#[test]
fn rloo_killed_and_resumed_matches_uninterrupted() {
    let (inp, base) = setup();
    let d = common::tmp_dir("kill-rloo");
    let args = with(
        ppo_args(inp, base, &d),
        &["--algo", "rloo", "--rloo-k", "4"],
    );
    let (_, diff) = kill_resume_compare(args, &d);
    assert_eq!(diff, 0.0, "policy: max |Δw| = {diff}");
    for run in ["uninterrupted", "killed"] {
        assert!(
            !d.join(run).join("ckpt/value").exists(),
            "RLOO saves no value model"
        );
    }
    let metrics = |run: &str| std::fs::read_to_string(d.join(run).join("metrics.csv")).unwrap();
    assert_eq!(metrics("uninterrupted"), metrics("killed"));
}

#[test]
fn ppo_injected_nan_is_skipped_and_never_saved() {
    let (inp, base) = setup();
    let d = common::tmp_dir("nan-ppo");
    let out = d.join("out");
    let err = ok(&rlhf()
        .args(ppo_args(inp, base, &d))
        .arg("--out")
        .arg(&out)
        .env("RLHF_INJECT_NAN_AT_STEP", "5")
        .output()
        .unwrap());
    assert!(err.contains("step 5: non-finite"), "{err}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["skipped_steps"], 1);
    // every checkpoint the run wrote loads (loading refuses non-finite weights)
    let dev = burn::prelude::Device::flex();
    rlhf::checkpoint::load_lm(&out, &dev).unwrap();
    rlhf::checkpoint::load_rm(&out.join("ckpt/value"), &dev).unwrap();
    // 8 in a row stop the stage and name the last good checkpoint
    let o = rlhf()
        .args(ppo_args(inp, base, &d))
        .arg("--out")
        .arg(d.join("stop"))
        .env("RLHF_INJECT_NAN_AT_STEP", "9-")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("8 consecutive non-finite"), "{err}");
    assert!(err.contains("last good checkpoint"), "{err}");
}
