//! End-to-end: the README's main command on the tiny preset, run as a user would, then rerun on
//! the same directory with `--compare bon,rloo,dpo` (every finished stage skipped, the frontier
//! added). Also: clear errors for bad input.

use crate::common;
use crate::fixtures;

use std::process::Command;

fn rlhf() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rlhf"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn pipeline_tiny_end_to_end_and_rerun_skips() {
    let d = common::tmp_dir("pipeline");
    let out = d.join("run");
    let run = |more: &[&str]| {
        rlhf()
            .args([
                "pipeline",
                "--preset",
                "tiny",
                "--device",
                "cpu",
                "--ptx-ablation",
            ])
            .args(more)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let o = run(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "pipeline failed:\n{err}");
    for f in [
        "tokenizer.json",
        "pipeline.json",
        "pretrain/ckpt/model.safetensors",
        "pretrain/metrics.csv",
        "sft/ckpt/model.safetensors",
        "sft/metrics.csv",
        "samples.jsonl",
        "rankings.jsonl",
        "rm/ckpt/model.safetensors",
        "ppo/ckpt/model.safetensors",
        "ppo/ckpt/value/model.safetensors",
        "ppo/metrics.csv",
        "timings.json",
        "eval/eval.json",
        "eval/samples_policy.jsonl",
        "eval/samples_baseline.jsonl",
        "report.md",
        "plots/ppo_reward.png",
        "plots/ppo_kl.png",
        "ppo_noptx/ckpt/model.safetensors",
        "eval_noptx/eval.json",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let samples = rlhf::data::formats::read_samples(&out.join("samples.jsonl")).unwrap();
    assert_eq!(samples.len(), 16);
    assert!(samples.iter().all(|s| s.responses.len() == 4));
    assert!(samples
        .iter()
        .flat_map(|s| &s.responses)
        .any(|r| !r.is_empty()));
    // rerun with --compare: the finished stages are skipped, the frontier's run
    let o = run(&["--compare", "bon,rloo,dpo"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.matches("already done, skipped").count(), 10, "{err}");
    frontier_matches_its_evaluations(&out);
    // the numbers in the report are those of metrics.csv and eval.json
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let (rh, rr) = rlhf::train::metrics::read(&out.join("rm/metrics.csv")).unwrap();
    let acc = rh.iter().position(|h| h == "rm/accuracy").unwrap();
    let last_acc = rr
        .iter()
        .rev()
        .map(|r| r[acc])
        .find(|v| v.is_finite())
        .unwrap();
    // with the interval of rm/summary.json
    let rs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("rm/summary.json")).unwrap())
            .unwrap();
    let ri = &rs["final_accuracy_interval"];
    let (lo, hi) = (ri["lo"].as_f64().unwrap(), ri["hi"].as_f64().unwrap());
    assert!(
        md.contains(&format!(
            "| RM held-out pairwise accuracy | ≥ 0.75 | {last_acc:.3} [{lo:.3}, {hi:.3}] |"
        )),
        "report.md does not show the RM accuracy {last_acc:.3} of rm/metrics.csv:\n{md}"
    );
    let ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval/eval.json")).unwrap())
            .unwrap();
    let win = ev["win_rate"]["rate"].as_f64().unwrap();
    let wi = &ev["win_rate_interval"];
    let (lo, hi) = (wi["lo"].as_f64().unwrap(), wi["hi"].as_f64().unwrap());
    assert!(
        md.contains(&format!("| {win:.3} [{lo:.3}, {hi:.3}] |")),
        "win rate {win:.3}:\n{md}"
    );
    // the ptx ablation's held-out perplexities are the report's "without ptx" row
    let no: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval_noptx/eval.json")).unwrap())
            .unwrap();
    let (b, p) = (
        no["baseline"]["heldout_ppl"].as_f64().unwrap(),
        no["policy"]["heldout_ppl"].as_f64().unwrap(),
    );
    let row = format!("| without ptx | {b:.2} | {p:.2} | {:+.2} |", p - b);
    assert!(md.contains(&row), "no '{row}' in:\n{md}");
    assert!(
        md.contains("ptx ablation, not counted in the total"),
        "{md}"
    );
    let samples =
        rlhf::data::formats::read_samples(&out.join("eval/samples_policy.jsonl")).unwrap();
    assert_eq!(samples.len(), 32);
    // the PPO metrics have one row per iteration with a finite KL and RM score
    let (header, rows) = rlhf::train::metrics::read(&out.join("ppo/metrics.csv")).unwrap();
    let kl = header.iter().position(|h| h == "ppo/kl").unwrap();
    let score = header.iter().position(|h| h == "ppo/rm_score").unwrap();
    assert_eq!(
        rows.len(),
        rlhf::stages::ppo::PpoConfig::for_job(rlhf::stages::ppo::PpoDefaults::Tiny).steps
    );
    assert!(rows
        .iter()
        .all(|r| r[kl].is_finite() && r[score].is_finite()));
}

/// `frontier/frontier.json` holds SFT, best-of-2 … 64, PPO, RLOO and DPO, each trained policy's
/// point from its temperature-1 evaluation, and the report shows them.
fn frontier_matches_its_evaluations(out: &std::path::Path) {
    let read = |rel: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(rel)).unwrap()).unwrap()
    };
    let f = read("frontier/frontier.json");
    let points = f["points"].as_array().unwrap();
    let methods: Vec<&str> = points
        .iter()
        .map(|p| p["method"].as_str().unwrap())
        .collect();
    let bon: Vec<String> = [2, 4, 8, 16, 32, 64]
        .iter()
        .map(|n| format!("best-of-{n}"))
        .collect();
    let mut want = vec!["SFT"];
    want.extend(bon.iter().map(String::as_str));
    want.extend(["PPO", "RLOO", "DPO"]);
    assert_eq!(methods, want);
    assert!(out.join("rloo/ckpt/model.safetensors").is_file());
    assert!(
        !out.join("rloo/ckpt/value").exists(),
        "RLOO has no value model"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Reward–KL frontier"), "{md}");
    assert!(out.join("plots/frontier.png").is_file());
    assert!(out.join("dpo/ckpt/model.safetensors").is_file());
    for (name, dir) in [("PPO", "ppo"), ("RLOO", "rloo"), ("DPO", "dpo")] {
        let p = points.iter().find(|p| p["method"] == name).unwrap();
        let e = read(&format!("frontier/eval_{dir}/eval.json"));
        assert_eq!(e["sampling"]["temperature"], 1.0);
        assert_eq!(p["win_rate"], e["win_rate"]["rate"]);
        assert_eq!(p["kl_nats"], e["kl_nats_per_seq"]);
        assert_eq!(
            p["seconds"],
            read(&format!("{dir}/summary.json"))["seconds"]
        );
        let row = format!(
            "| {name} | {:.2} | {:.3} |",
            p["kl_nats"].as_f64().unwrap(),
            p["win_rate"].as_f64().unwrap()
        );
        assert!(md.contains(&row), "no '{row}' in the report");
    }
    let b = read("frontier/bon/bon.json");
    let p64 = points.iter().find(|p| p["method"] == "best-of-64").unwrap();
    assert_eq!(p64["win_rate"], b["rows"][6]["win_rate"]["rate"]);
}

#[test]
fn bad_input_gives_file_and_line() {
    let d = common::tmp_dir("badinput");
    let f = d.join("bad.jsonl");
    std::fs::write(
        &f,
        "{\"prompt\":\"a\",\"response\":\"b\"}\n{\"prompt\":\"a\",\"response\":17}\n",
    )
    .unwrap();
    // a missing checkpoint is reported before the data
    let o = rlhf()
        .args(["sft", "--device", "cpu", "--init"])
        .arg(d.join("nope"))
        .arg("--data")
        .arg(&f)
        .arg("--out")
        .arg(d.join("o"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("does not exist"), "{err}");
    // -k 0 with a real checkpoint and real prompts: refused for what it is, nothing written
    let inp = fixtures::inputs(&d.join("in"), &common::tok());
    let ckpt = d.join("ckpt");
    fixtures::tiny_pretrain(&inp, &ckpt, 1);
    // the bad data with a good checkpoint: the file, the line and the field
    let o = rlhf()
        .args(["sft", "--device", "cpu", "--init"])
        .arg(&ckpt)
        .arg("--data")
        .arg(&f)
        .arg("--out")
        .arg(d.join("o"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad.jsonl:2") && err.contains("field \"response\" must be a string"),
        "{err}"
    );
    assert!(!d.join("o/ckpt").exists(), "nothing is written");
    let prompts = d.join("prompts.jsonl");
    std::fs::write(&prompts, "{\"prompt\":\"Define: cat\"}\n").unwrap();
    let out = d.join("samples.jsonl");
    let o = rlhf()
        .args(["sample", "--device", "cpu", "--ckpt"])
        .arg(&ckpt)
        .arg("--prompts")
        .arg(&prompts)
        .arg("--out")
        .arg(&out)
        .args(["-k", "0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("-k must be at least 1"), "{err}");
    assert!(!out.exists(), "nothing is written");
    let o = rlhf()
        .args(["pipeline", "--preset", "huge", "--device", "cpu"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("unknown preset 'huge'"),
        "{err}"
    );
    let o = rlhf().args(["--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("pipeline"));
}

/// "The job is deterministic": the pipeline run twice (shortened) gives the same bytes — every
/// checkpoint's weights, the tokenizer, samples, rankings and eval samples — and the same
/// eval.json (but its wall time and the paths it names) and metrics.csv (but its throughput).
#[test]
fn the_job_is_deterministic() {
    let d = common::tmp_dir("deterministic");
    let run = |out: &std::path::Path| {
        let o = rlhf()
            .args(["pipeline", "--preset", "tiny", "--device", "cpu"])
            .args(fixtures::SHORT_PIPELINE)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (a, b) = (d.join("a"), d.join("b"));
    run(&a);
    run(&b);
    for ckpt in ["pretrain", "sft", "rm", "ppo", "ppo/ckpt/value"] {
        let f = |r: &std::path::Path| {
            r.join(ckpt).join(if ckpt.ends_with("value") {
                "model.safetensors"
            } else {
                "ckpt/model.safetensors"
            })
        };
        fixtures::assert_same_bytes(&f(&a), &f(&b), ckpt);
    }
    for f in [
        "tokenizer.json",
        "samples.jsonl",
        "rankings.jsonl",
        "eval/samples_policy.jsonl",
        "eval/samples_baseline.jsonl",
    ] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x == y, "{f} differs between two runs");
    }
    // eval.json but its wall time and the run directories it names
    let eval = |r: &std::path::Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(r.join("eval/eval.json")).unwrap())
                .unwrap();
        v.as_object_mut().unwrap().remove("seconds");
        for side in ["policy", "baseline"] {
            v[side].as_object_mut().unwrap().remove("checkpoint");
        }
        v.to_string()
    };
    assert_eq!(eval(&a), eval(&b), "eval.json differs between two runs");
    for stage in ["pretrain", "sft", "rm", "ppo"] {
        let read = |r: &std::path::Path| {
            let (head, rows) =
                rlhf::train::metrics::read(&r.join(stage).join("metrics.csv")).unwrap();
            let keep: Vec<usize> = (0..head.len())
                .filter(|&i| head[i] != "tokens_per_s")
                .collect();
            let bits: Vec<Vec<u64>> = rows
                .iter()
                .map(|row| keep.iter().map(|&i| row[i].to_bits()).collect())
                .collect();
            (head, bits)
        };
        assert!(
            read(&a) == read(&b),
            "{stage}/metrics.csv differs between two runs"
        );
    }
}
