//! The numerical guard, through the binary as a user runs it, on the CPU:
//!
//! - a NaN injected through the `RLHF_INJECT_NAN_AT_STEP` test hook is skipped and logged with
//!   its step, changes nothing, and is never saved; N in a row stop the stage with a message
//!   naming the last good checkpoint, from which `--resume` finishes the stage (pretrain, RM and
//!   PPO);
//! - `checkpoint::save` refuses non-finite weights and keeps the previous checkpoint.

use crate::common;
use crate::fixtures;

use fixtures::{
    assert_same_bytes, ckpt_step, max_abs_diff, ok, ppo_args, pretrain_args, rlhf, s, with, Inputs,
};
use rlhf::model::{InitRng, Lm};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Inputs and a 6-step tiny pretrained checkpoint, made once.
fn setup() -> &'static (Inputs, PathBuf) {
    static S: OnceLock<(Inputs, PathBuf)> = OnceLock::new();
    S.get_or_init(|| fixtures::tiny_base(&common::tmp_dir("nan-guard"), &common::tok()))
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
    assert_same_bytes(
        &d.join("a/ckpt/model.safetensors"),
        &d.join("b/ckpt/model.safetensors"),
        "skipped NaN steps",
    );
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
    let model = Lm::new(&cfg, &mut InitRng::new(0), &dev);
    let config = CheckpointConfig {
        kind: rlhf::checkpoint::CheckpointKind::Lm,
        stage: "test".into(),
        model: cfg,
        reward_bias: None,
        reward_gain: None,
        lora: None,
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
    let g = bad.as_gpt2_mut().unwrap();
    g.h[1].mlp.c_fc.weight = g.h[1]
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
    // the final checkpoint loads (loading refuses non-finite weights), and so does the one
    // written right after the skipped step: the run stopped there by the crash hook
    let dev = burn::prelude::Device::flex();
    rlhf::checkpoint::load_lm(&out, &dev).unwrap();
    rlhf::checkpoint::load_rm(&out.join("ckpt/value"), &dev).unwrap();
    let cut = d.join("cut");
    let o = rlhf()
        .args(ppo_args(inp, base, &d))
        .arg("--out")
        .arg(&cut)
        .env("RLHF_INJECT_NAN_AT_STEP", "5")
        .env(rlhf::checkpoint::CRASH_ENV, "done:5")
        .output()
        .unwrap();
    assert!(!o.status.success(), "the crash hook stops the run");
    assert_eq!(ckpt_step(&cut), Some((5, false)));
    rlhf::checkpoint::load_lm(&cut, &dev).unwrap();
    rlhf::checkpoint::load_rm(&cut.join("ckpt/value"), &dev).unwrap();
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
