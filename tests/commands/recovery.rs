//! Crash safety, through the binary as a user runs it, on the CPU: pretrain, SFT and RM of the
//! tiny preset are SIGKILLed mid-run once a checkpoint past step 0 exists, resumed with
//! `--resume`, and must end with the weights of an uninterrupted run, bitwise (every tensor
//! equal; dropout 0.1 for the LM stages, so the dropout RNG is part of what resumes), as
//! docs/troubleshooting.md promises; PPO (ptx on, adaptive β) too, with its KL controller, and
//! RLOO. The numerical guard's tests are in `nan_guard.rs`.

use crate::common;
use crate::fixtures;

use fixtures::{assert_same_bytes, ckpt_step, ok, ppo_args, pretrain_args, rlhf, s, with, Inputs};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Inputs and a 6-step tiny pretrained checkpoint, made once.
fn setup() -> &'static (Inputs, PathBuf) {
    static S: OnceLock<(Inputs, PathBuf)> = OnceLock::new();
    S.get_or_init(|| fixtures::tiny_base(&common::tmp_dir("recovery"), &common::tok()))
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

/// Uninterrupted vs killed + resumed: the final weights must be the same bytes; returns the
/// step of the checkpoint the kill left.
pub(crate) fn kill_resume_compare(args: Vec<String>, d: &Path) -> usize {
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
    eprintln!("killed at checkpoint step {at}, resumed");
    assert_same_bytes(
        &a.join("ckpt/model.safetensors"),
        &b.join("ckpt/model.safetensors"),
        &format!("killed at checkpoint step {at}, resumed"),
    );
    at
}

#[test]
fn pretrain_killed_and_resumed_matches_uninterrupted() {
    let (inp, _) = setup();
    let d = common::tmp_dir("kill-pretrain");
    let args = with(
        pretrain_args(inp),
        &["--steps", "60", "--checkpoint-every", "5"],
    );
    let at = kill_resume_compare(args, &d);
    assert!(at < 60);
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
    kill_resume_compare(args, &d);
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
    kill_resume_compare(args.clone(), &d);
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
fn ppo_killed_and_resumed_matches_uninterrupted() {
    let (inp, base) = setup();
    let d = common::tmp_dir("kill-ppo");
    kill_resume_compare(ppo_args(inp, base, &d), &d);
    assert_same_bytes(
        &d.join("uninterrupted/ckpt/value/model.safetensors"),
        &d.join("killed/ckpt/value/model.safetensors"),
        "value model",
    );
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
    kill_resume_compare(args, &d);
    for run in ["uninterrupted", "killed"] {
        assert!(
            !d.join(run).join("ckpt/value").exists(),
            "RLOO saves no value model"
        );
    }
    let metrics = |run: &str| std::fs::read_to_string(d.join(run).join("metrics.csv")).unwrap();
    assert_eq!(metrics("uninterrupted"), metrics("killed"));
}

/// A crash at each instant of a checkpoint write (`checkpoint::CRASH_POINTS`, the second write of
/// the run) leaves a checkpoint that `sample` reads and `--resume` continues from, to the bytes
/// of an uninterrupted run.
#[test]
fn a_crash_at_every_instant_of_a_checkpoint_write_resumes_to_the_same_bytes() {
    use rlhf::checkpoint::{CRASH_ENV, CRASH_POINTS};
    let (inp, _) = setup();
    let d = common::tmp_dir("crash-points");
    let args = with(
        pretrain_args(inp),
        &["--steps", "12", "--checkpoint-every", "4"],
    );
    let a = d.join("uninterrupted");
    ok(&rlhf().args(&args).arg("--out").arg(&a).output().unwrap());
    let prompts = d.join("prompts.jsonl");
    std::fs::write(&prompts, "{\"prompt\":\"Define: cat\"}\n").unwrap();
    for point in CRASH_POINTS {
        let b = d.join(point);
        let o = rlhf()
            .args(&args)
            .arg("--out")
            .arg(&b)
            .env(CRASH_ENV, format!("{point}:2"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(&format!("aborting at {point}")),
            "{point}: the run was not cut there: {err}"
        );
        let (step, finished) = ckpt_step(&b).unwrap_or_else(|| panic!("{point}: no checkpoint"));
        assert!(step > 0 && !finished, "{point}: checkpoint at step {step}");
        ok(&rlhf()
            .args([
                "sample",
                "--device",
                "cpu",
                "--ckpt",
                s(&b),
                "--prompts",
                s(&prompts),
            ])
            .arg("--out")
            .arg(d.join(format!("{point}.jsonl")))
            .args(["-k", "1", "--max-new-tokens", "4"])
            .output()
            .unwrap());
        ok(&rlhf()
            .args(&args)
            .args(["--resume", "--out"])
            .arg(&b)
            .output()
            .unwrap());
        assert_same_bytes(
            &a.join("ckpt/model.safetensors"),
            &b.join("ckpt/model.safetensors"),
            &format!("cut at {point} of the second checkpoint write, resumed"),
        );
    }
}
