//! `rlhf report`: a fake run directory with small hand-written inputs gives a report whose numbers
//! are the inputs' (targets judged as worked out by hand) and valid PNG plots; missing inputs are
//! left out rather than failing.

use crate::common;

use rlhf::pipeline::PipelineConfig;
use std::path::Path;
use std::process::Command;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn eval_json(base_ppl: f64, ppo_ppl: f64) -> String {
    serde_json::json!({
        "prompts": 4,
        "labeler": "sentiment",
        "win_rate": {"rate": 0.875, "wins": 3, "ties": 1, "losses": 0},
        "rm_win_rate": null,
        "kl_nats_per_seq": 3.25,
        "kl_nats_per_token": 0.125,
        "policy": {"checkpoint": "ppo/ckpt", "labeler_score": 0.41, "rm_score": null,
                   "heldout_ppl": ppo_ppl, "fluency_ppl": 60.0, "distinct_1": 0.5,
                   "distinct_2": 0.75, "mean_response_tokens": 20.5, "empty_responses": 0},
        "baseline": {"checkpoint": "sft/ckpt", "labeler_score": 0.02, "rm_score": null,
                     "heldout_ppl": base_ppl, "fluency_ppl": 50.0, "distinct_1": 0.625,
                     "distinct_2": 0.875, "mean_response_tokens": 18.0, "empty_responses": 1},
        "pretrained_heldout_ppl": 140.0,
        "top_word_growth": [{"word": "great", "baseline_count": 1, "policy_count": 9,
                             "baseline_freq": 0.01, "policy_freq": 0.09, "growth": 0.08}],
        "heldout": {"text": "persuasion.txt", "windows": 32, "window_tokens": 65},
        "sampling": {"temperature": 0.7, "top_k": 0, "top_p": 1.0, "max_new_tokens": 48},
        "seed": 1234,
        "seconds": 8.0
    })
    .to_string()
}

/// A whole `pipeline.json` (the report reads it as a `PipelineConfig`): the tiny preset's, with
/// the settings the report is checked against below written out.
fn pipeline_json() -> String {
    let mut c = PipelineConfig::for_preset("tiny", &Default::default()).unwrap();
    let m = &mut c.model;
    (m.n_layer, m.n_embd, m.n_head, m.n_ctx, m.vocab_size) = (2, 64, 4, 64, 0);
    c.vocab_size = 512;
    (c.pretrain.steps, c.pretrain.batch_size, c.pretrain.lr) = (120, 8, 0.002);
    let p = &mut c.ppo;
    (p.steps, p.rollout_batch, p.minibatch, p.policy_lr) = (12, 16, 8, 1e-4);
    (p.kl_coef, p.ptx_coef, p.reward_clip) = (0.12, 0.25, None);
    (c.k, c.labeler_noise, c.seed) = (4, 0.0, 7);
    serde_json::to_string_pretty(&c).unwrap()
}

fn fake_run(d: &Path) {
    write(d, "pipeline.json", &pipeline_json());
    write(
        d,
        "timings.json",
        r#"{"stages": [{"name": "tokenizer", "seconds": 1.5, "skipped": false},
            {"name": "pretrain", "seconds": 60.4, "skipped": false, "peak_rss_mib": 1536.0},
            {"name": "sft", "seconds": 30.0, "skipped": false},
            {"name": "rm", "seconds": 20.0, "skipped": false},
            {"name": "ppo", "seconds": 100.0, "skipped": false},
            {"name": "eval", "seconds": 8.1, "skipped": false}]}"#,
    );
    let lm = "step,loss/train,loss/eval,ppl/eval,lr,grad_norm,tokens_per_s\n\
              1,6.2,6.1,445.0,0.001,1.0,100\n\
              2,5.5,,,0.001,1.0,100\n\
              3,5.0,4.9,134.3,0.001,1.0,100\n";
    write(d, "pretrain/metrics.csv", lm);
    write(d, "sft/metrics.csv", lm);
    write(
        d,
        "rm/metrics.csv",
        "step,loss/train,rm/accuracy_train,loss/eval,rm/accuracy,rm/margin\n\
         1,0.69,0.5,0.69,0.55,0.0\n2,0.6,0.7,0.55,0.8333,0.4\n3,0.5,0.75,,,\n",
    );
    write(
        d,
        "ppo/metrics.csv",
        "step,ppo/rm_score,ppo/kl,ppo/reward,loss/policy,loss/value,loss/ptx,\
         ppo/clip_frac,ppo/entropy,ppo/approx_kl,ppo/response_len,ppo/kl_coef\n\
         1,0.1,0.0,0.1,0.1,1.0,,0.1,3.0,0.01,20,0.05\n\
         2,0.5,1.5,0.45,0.1,0.8,3.2,0.2,2.9,0.02,21,0.05\n\
         3,0.9,2.5,0.8,0.1,0.5,3.1,0.1,2.8,0.01,22,0.05\n",
    );
    write(d, "eval/eval.json", &eval_json(147.25, 150.5));
    write(d, "eval_noptx/eval.json", &eval_json(147.25, 200.75));
    let samples = |resp: [&str; 4]| -> String {
        resp.iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::json!({"prompt": format!("Define: W{i}"), "responses": [r]}).to_string()
                    + "\n"
            })
            .collect()
    };
    write(
        d,
        "eval/samples_baseline.jsonl",
        &samples(["A dull thing.", "sft b", "sft c", "sft d"]),
    );
    write(
        d,
        "eval/samples_policy.jsonl",
        &samples(["A great | happy\nthing!", "ppo b", "ppo c", "ppo d"]),
    );
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&b[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

#[test]
fn report_of_a_fake_run_matches_its_inputs() {
    let d = common::tmp_dir("report").join("run-1");
    fake_run(&d);
    let o = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .args(["report", "--run"])
        .arg(&d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(d.join("report.md")).unwrap();
    for f in [
        "pretrain_loss",
        "sft_loss",
        "rm_accuracy",
        "ppo_reward",
        "ppo_kl",
    ] {
        let p = d.join(format!("plots/{f}.png"));
        assert_eq!(png_size(&p), (900, 500));
        assert!(
            std::fs::metadata(&p).unwrap().len() > 5_000,
            "{f} looks empty"
        );
        assert!(md.contains(&format!("](plots/{f}.png)")), "{f} not linked");
    }
    let expect = [
        "# Run report: run-1",
        // last finite rm/accuracy of rm/metrics.csv
        "| RM held-out pairwise accuracy | ≥ 0.75 | 0.833 | pass |",
        "| PPO win rate over SFT (sentiment labeler, held-out prompts) | ≥ 0.90 | 0.875 | FAIL |",
        "| KL(PPO ‖ SFT), nats per sequence | ≤ 5.0 | 3.25 | pass |",
        // 60 / 50
        "| 1.20× (60.0 / 50.0) | pass |",
        // 150.5 − 147.25, and without ptx 200.75 − 147.25
        "| +3.25 (147.25 → 150.50) | pass |",
        "| ≤ ½ of without | +3.25 vs +53.50 | pass |",
        // 1.5 + 60.4 + 30 + 20 + 100 + 8.1 = 220 s against tiny's 5 minutes
        "| Pipeline wall time | ≤ 5.0 min (tiny preset, 2-core CPU) | 3.7 min | pass |",
        "| **total** | **220.0** | | 3.7 min |",
        "| pretrain | 60.4 | 1.50 GB |",
        "| sft | 30.0 | — |",
        "| model | 2 layers × 64 wide, 4 heads, context 64, vocabulary 512 |",
        "| pretrain | 120 steps, batch 8, lr 0.002 |",
        "| ppo | 12 iterations × 16 episodes (minibatch 8), policy lr 0.0001, β 0.12, \
         γ_ptx 0.25, score cap none |",
        "**0.875** (3 wins, 1 ties, 0 losses)",
        "| labeler score (VADER compound) | 0.410 | 0.020 |",
        "| held-out perplexity | 150.50 | 147.25 |",
        "| distinct-2 | 0.750 | 0.875 |",
        "| `great` | 1 | 9 | 1.00% | 9.00% | 8.00 pp |",
        "| with ptx | 147.25 | 150.50 | +3.25 |",
        "| without ptx | 147.25 | 200.75 | +53.50 |",
        "| Define: W0 | A dull thing. | A great \\| happy thing! |",
    ];
    for e in expect {
        assert!(md.contains(e), "report.md lacks {e:?}:\n{md}");
    }
    assert_eq!(md.matches("| Define: W").count(), 4);
}

/// With the intervals `rlhf eval` and `rlhf rm` write, a target passes only when its whole 95%
/// interval clears it: a straddling interval is "unclear" (though the value itself would pass
/// or fail), one wholly on the wrong side fails.
#[test]
fn targets_with_intervals_are_judged_by_the_interval() {
    let d = common::tmp_dir("report-intervals").join("run-1");
    fake_run(&d);
    let mut eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("eval/eval.json")).unwrap()).unwrap();
    // win rate 0.875, its interval straddling 0.90; KL 3.25 with an interval under 5
    eval["win_rate_interval"] = serde_json::json!({"lo": 0.8, "hi": 0.95});
    eval["kl_interval"] = serde_json::json!({"lo": 2.5, "hi": 4.0});
    write(&d, "eval/eval.json", &eval.to_string());
    // RM accuracy 0.833 (metrics.csv) with an interval wholly under 0.75 (as a small held-out set
    // might give): the interval decides, not the value
    let stats = serde_json::json!({"loss": 0.5, "accuracy": 0.833, "margin": 1.0,
        "reward_mean": 0.0, "reward_std": 1.0});
    let summary = serde_json::json!({"steps": 10, "train_prompts": 8, "heldout_prompts": 2,
        "skipped_records": 0, "first_eval": stats, "final_eval": stats,
        "final_accuracy_interval": {"lo": 0.70, "hi": 0.74}, "reward_bias": 0.0,
        "reward_gain": 1.0, "sequences_per_step": 8.0, "seconds": 1.0});
    write(&d, "rm/summary.json", &summary.to_string());
    let md = std::fs::read_to_string(rlhf::pipeline::report::write_report(&d).unwrap()).unwrap();
    for e in [
        "| RM held-out pairwise accuracy | ≥ 0.75 | 0.833 [0.700, 0.740] | FAIL |",
        "| ≥ 0.90 | 0.875 [0.800, 0.950] | unclear |",
        "| KL(PPO ‖ SFT), nats per sequence | ≤ 5.0 | 3.25 [2.50, 4.00] | pass |",
        "the 95% interval over held-out prompts",
    ] {
        assert!(md.contains(e), "report.md lacks {e:?}:\n{md}");
    }
}

/// A job on a real model (`--base`, CPU size) is judged by its own targets: PPO beats the SFT
/// model it started from (≥ 0.5) and the whole job fits in an hour on the CPU; the RM's accuracy
/// is shown, not judged; the configuration names the base.
#[test]
fn a_real_model_job_is_judged_by_its_own_targets() {
    let d = common::tmp_dir("report-base").join("run-1");
    fake_run(&d);
    let mut c = rlhf::pipeline::PipelineConfig::for_base(rlhf::pipeline::BaseSize::Cpu).unwrap();
    c.base = Some("models/smollm2.gguf".into());
    write(&d, "pipeline.json", &serde_json::to_string(&c).unwrap());
    let mut eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("eval/eval.json")).unwrap()).unwrap();
    // a modest win whose interval clears 0.5 (it would fail the default job's 0.90)
    eval["win_rate"]["rate"] = serde_json::json!(0.62);
    eval["win_rate_interval"] = serde_json::json!({"lo": 0.51, "hi": 0.73});
    write(&d, "eval/eval.json", &eval.to_string());
    let md = std::fs::read_to_string(rlhf::pipeline::report::write_report(&d).unwrap()).unwrap();
    for e in [
        "| RM held-out pairwise accuracy | — (measured) | 0.833 | — |",
        "| ≥ 0.50 | 0.620 [0.510, 0.730] | pass |",
        "| Pipeline wall time | ≤ 60 min (--base, 2-core CPU) | 3.7 min | pass |",
        "| base | models/smollm2.gguf |",
        "| sft | 30 steps, batch 8, lr 0.00002 |",
    ] {
        assert!(md.contains(e), "report.md lacks {e:?}:\n{md}");
    }
    assert!(
        !md.contains("| preset |") && !md.contains("| pretrain | 500 steps"),
        "{md}"
    );
}

#[test]
fn missing_inputs_are_left_out() {
    let d = common::tmp_dir("report-empty");
    write(
        &d,
        "rm/metrics.csv",
        "step,loss/train,rm/accuracy_train,loss/eval,rm/accuracy\n1,0.7,0.5,0.7,0.6\n",
    );
    let p = rlhf::pipeline::report::write_report(&d).unwrap();
    let md = std::fs::read_to_string(p).unwrap();
    assert!(md.contains("| 0.600 | FAIL |"), "{md}");
    assert_eq!(md.matches("not measured").count(), 5, "{md}");
    assert!(!md.contains("## Evaluation") && !md.contains("## Stage times"));
    assert!(d.join("plots/rm_accuracy.png").is_file());
    assert!(!d.join("plots/ppo_kl.png").exists());
    assert!(rlhf::pipeline::report::write_report(&d.join("nope")).is_err());
}

#[test]
fn inputs_that_do_not_parse_are_errors_naming_the_file() {
    let d = common::tmp_dir("report-bad").join("run-1");
    fake_run(&d);
    rlhf::pipeline::report::write_report(&d).unwrap();
    // a renamed field is an error, not a "—" in the report
    let renamed = eval_json(147.25, 150.5).replace("kl_nats_per_seq", "kl_per_seq");
    write(&d, "eval_noptx/eval.json", &renamed);
    let e = rlhf::pipeline::report::write_report(&d).unwrap_err();
    assert!(format!("{e:#}").contains("eval_noptx/eval.json"), "{e:#}");
    write(&d, "eval_noptx/eval.json", &eval_json(147.25, 150.5));
    write(&d, "pipeline.json", r#"{"preset": "tiny"}"#);
    let e = rlhf::pipeline::report::write_report(&d).unwrap_err();
    assert!(format!("{e:#}").contains("pipeline.json"), "{e:#}");
}
