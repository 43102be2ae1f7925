//! LoRA through the binary, on the CPU: `sft`, `rm`, `dpo` and `ppo` with `--lora-rank` train
//! the adapters (and a reward or value model's head) only and save only them, with the base's
//! path and hash; a killed LoRA run resumes to the same bytes; a LoRA checkpoint samples, trains
//! on as the next stage's start, merges into a full model that computes what it computed, and is
//! refused once its base changed; a pipeline with `--lora-rank` keeps adapters in every stage.

use crate::common;
use crate::fixtures;

use fixtures::{assert_same_bytes, ok, ppo_args, rlhf, s, with, Inputs};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn setup() -> &'static (Inputs, PathBuf) {
    static S: OnceLock<(Inputs, PathBuf)> = OnceLock::new();
    S.get_or_init(|| fixtures::tiny_base(&common::tmp_dir("lora"), &common::tok()))
}

/// The tensor names of a safetensors file.
fn names(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut n: Vec<String> = st.names().into_iter().map(String::from).collect();
    n.sort();
    n
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn sft_args(inp: &Inputs, init: &Path, steps: &str) -> Vec<String> {
    sft_args_rank(inp, init, steps, "4")
}

fn sft_args_rank(inp: &Inputs, init: &Path, steps: &str, rank: &str) -> Vec<String> {
    [
        "sft",
        "--device",
        "cpu",
        "--init",
        s(init),
        "--data",
        s(&inp.sft),
        "--batch-size",
        "8",
        "--steps",
        steps,
        "--checkpoint-every",
        "5",
        "--eval-every",
        "10",
        "--lora-rank",
        rank,
        "--lora-targets",
        "q,v,up",
        "--lora-dropout",
        "0.1",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn sft_with_lora_saves_adapters_only_and_resumes_to_the_same_bytes() {
    let (inp, base) = setup();
    let d = common::tmp_dir("lora-sft");
    let args = sft_args(inp, base, "40");
    // killed mid-run and resumed: the same adapters, bitwise (adapter dropout on)
    crate::recovery::kill_resume_compare(args, &d);
    let a = d.join("uninterrupted");
    // adapters only: GPT-2's c_attn (q, v) and c_fc (up) in each of 2 blocks, A and B each
    let n = names(&a.join("ckpt/model.safetensors"));
    assert_eq!(n.len(), 2 * 2 * 2, "{n:?}");
    assert!(n.iter().all(|t| t.contains(".lora.lora_")), "{n:?}");
    assert!(n.iter().any(|t| t == "h.1.mlp.c_fc.lora.lora_b"), "{n:?}");
    let cfg = json(&a.join("ckpt/config.json"));
    let base_dir = PathBuf::from(cfg["lora"]["base"].as_str().unwrap());
    assert_eq!(base_dir, base.join("ckpt").canonicalize().unwrap());
    assert_eq!(cfg["lora"]["lora"]["rank"], 4);
    assert_eq!(cfg["lora"]["lora"]["alpha"], 8.0);
    assert_eq!(cfg["lora"]["base_sha256"].as_str().unwrap().len(), 64);
    // the optimizer holds moments for the adapters alone: far smaller than the base's weights
    let optim = std::fs::metadata(a.join("ckpt/optimizer.bpk"))
        .unwrap()
        .len();
    let weights = std::fs::metadata(base.join("ckpt/model.safetensors"))
        .unwrap()
        .len();
    assert!(optim * 4 < weights, "optimizer {optim} B, base {weights} B");
}

#[test]
fn a_lora_checkpoint_samples_trains_on_merges_and_refuses_a_changed_base() {
    let (inp, base) = setup();
    let d = common::tmp_dir("lora-use");
    // a base of its own, to change at the end
    let own = d.join("base");
    fixtures::copy_dir(&base.join("ckpt"), &own);
    let sft = d.join("sft");
    ok(&rlhf()
        .args(sft_args(inp, &own, "6"))
        .arg("--out")
        .arg(&sft)
        .output()
        .unwrap());
    // samples from it
    let samples = d.join("samples.jsonl");
    ok(&rlhf()
        .args(["sample", "--device", "cpu", "--limit", "2", "-k", "2"])
        .args(["--max-new-tokens", "6", "--prompts"])
        .arg(common::assets().join("prompts.jsonl"))
        .arg("--ckpt")
        .arg(&sft)
        .arg("--out")
        .arg(&samples)
        .output()
        .unwrap());
    assert_eq!(
        std::fs::read_to_string(&samples).unwrap().lines().count(),
        2
    );
    // a reward model from it trains the same adapters on, and its head
    let rm = d.join("rm");
    train_rm(&sft, &inp.rankings, &rm, "4");
    let n = names(&rm.join("ckpt/model.safetensors"));
    assert!(n.contains(&"score.weight".to_string()), "{n:?}");
    assert!(
        n.iter()
            .all(|t| t == "score.weight" || t.contains(".lora.lora_")),
        "{n:?}"
    );
    assert_eq!(n.len(), 2 * 2 * 2 + 1, "{n:?}");
    let rm_cfg = json(&rm.join("ckpt/config.json"));
    assert_eq!(rm_cfg["lora"], json(&sft.join("ckpt/config.json"))["lora"]);
    // DPO with adapters of its own on the full base: adapters only (c_attn's, rank 2)
    let dpo = d.join("dpo");
    ok(&rlhf()
        .args([
            "dpo",
            "--device",
            "cpu",
            "--batch-size",
            "4",
            "--steps",
            "3",
        ])
        .args(["--eval-every", "3", "--lora-rank", "2", "--init"])
        .arg(&own)
        .arg("--data")
        .arg(&inp.rankings)
        .arg("--out")
        .arg(&dpo)
        .output()
        .unwrap());
    let n = names(&dpo.join("ckpt/model.safetensors"));
    assert_eq!(
        n.len(),
        2 * 2 * 2,
        "q,k,v,o: c_attn and attn.c_proj per block: {n:?}"
    );
    assert!(
        n.iter()
            .all(|t| t.contains("attn.c_") && t.contains(".lora.lora_")),
        "{n:?}"
    );
    assert_eq!(
        json(&dpo.join("ckpt/config.json"))["lora"]["lora"]["rank"],
        2
    );
    // other adapters on a LoRA start are refused, naming the way out
    let o = rlhf()
        .args(sft_args_rank(inp, &sft, "2", "8"))
        .arg("--out")
        .arg(d.join("again"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("rlhf merge"), "{err}");
    // merged: a full checkpoint computing what the adapted one computes
    let merged = d.join("merged");
    ok(&rlhf()
        .args(["merge", "--device", "cpu", "--ckpt"])
        .arg(&sft)
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap());
    assert!(json(&merged.join("config.json")).get("lora").is_none());
    assert_eq!(
        names(&merged.join("model.safetensors")),
        names(&own.join("model.safetensors"))
    );
    let greedy = |ckpt: &Path, out: &Path| -> String {
        let greedy = [
            "--limit",
            "3",
            "--temperature",
            "0",
            "--max-new-tokens",
            "12",
        ];
        ok(&sample(ckpt, out, &greedy));
        std::fs::read_to_string(out).unwrap()
    };
    assert_eq!(
        greedy(&sft, &d.join("g_adapted.jsonl")),
        greedy(&merged, &d.join("g_merged.jsonl")),
        "greedy samples of the adapted and the merged model"
    );
    // the base changed under the adapters: refused, naming both hashes
    let w = own.join("model.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&w, bytes).unwrap();
    let o = sample_one(&sft, &d.join("refused.jsonl"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("SHA-256"), "{err}");
    // the merged model needs no base
    ok(&sample_one(&merged, &d.join("merged.jsonl")));
}

/// `rlhf rm` of `steps` steps from `init` on `data` into `out`.
fn train_rm(init: &Path, data: &Path, out: &Path, steps: &str) {
    ok(&rlhf()
        .args([
            "rm",
            "--device",
            "cpu",
            "--batch-size",
            "4",
            "--steps",
            steps,
        ])
        .args(["--eval-every", steps, "--init"])
        .arg(init)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap());
}

/// `rlhf sample` of one response to the first bundled prompt.
fn sample_one(ckpt: &Path, out: &Path) -> std::process::Output {
    sample(ckpt, out, &["--limit", "1"])
}

/// `rlhf sample` of one response to each bundled prompt `more` selects.
fn sample(ckpt: &Path, out: &Path, more: &[&str]) -> std::process::Output {
    rlhf()
        .args(["sample", "--device", "cpu", "-k", "1"])
        .args(more)
        .arg("--prompts")
        .arg(common::assets().join("prompts.jsonl"))
        .arg("--ckpt")
        .arg(ckpt)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn ppo_with_lora_trains_policy_and_value_adapters_and_resumes_to_the_same_bytes() {
    let (inp, base) = setup();
    let d = common::tmp_dir("lora-ppo");
    // a fully trained reward model: the value model's adapters are trained on it
    let rm = d.join("rm");
    train_rm(base, &inp.rankings, &rm, "2");
    let args: Vec<String> = ppo_args(inp, base, &d)
        .into_iter()
        .map(|a| {
            if a == "--reward-token" {
                "--rm".into()
            } else {
                a
            }
        })
        .collect();
    let i = args.iter().position(|a| a == "--rm").unwrap();
    let mut args = args;
    args[i + 1] = s(&rm).to_string();
    let args = with(args, &["--lora-rank", "4", "--lora-targets", "q,down"]);
    crate::recovery::kill_resume_compare(args, &d);
    let run = d.join("uninterrupted/ckpt");
    assert_same_bytes(
        &run.join("value/model.safetensors"),
        &d.join("killed/ckpt/value/model.safetensors"),
        "LoRA value model",
    );
    // c_attn (q) and mlp.c_proj (down) of 2 blocks, A and B; the value model also its head
    let policy = names(&run.join("model.safetensors"));
    assert_eq!(policy.len(), 2 * 2 * 2, "{policy:?}");
    assert!(
        policy.iter().all(|t| t.contains(".lora.lora_")),
        "{policy:?}"
    );
    let value = names(&run.join("value/model.safetensors"));
    assert_eq!(value.len(), 2 * 2 * 2 + 1, "{value:?}");
    let cfg = |p: PathBuf| json(&p)["lora"]["base"].as_str().unwrap().to_string();
    assert_eq!(
        PathBuf::from(cfg(run.join("config.json"))),
        base.join("ckpt").canonicalize().unwrap()
    );
    assert_eq!(
        PathBuf::from(cfg(run.join("value/config.json"))),
        rm.join("ckpt").canonicalize().unwrap(),
        "the value model's adapters sit on the reward model"
    );
}

#[test]
fn a_pipeline_with_lora_trains_adapters_in_every_stage() {
    let d = common::tmp_dir("lora-pipeline");
    let out = d.join("run");
    ok(&rlhf()
        .args(["pipeline", "--preset", "tiny", "--device", "cpu"])
        .args([
            "--pretrain-steps",
            "10",
            "--sft-steps",
            "4",
            "--rm-steps",
            "4",
        ])
        .args(["--ppo-steps", "2", "--lora-rank", "4", "--out"])
        .arg(&out)
        .output()
        .unwrap());
    let base = out.join("pretrain/ckpt").canonicalize().unwrap();
    for stage in ["sft", "rm", "ppo", "ppo/ckpt/value"] {
        let dir = rlhf::checkpoint::resolve(&out.join(stage)).unwrap();
        let cfg = json(&dir.join("config.json"));
        assert_eq!(
            PathBuf::from(cfg["lora"]["base"].as_str().unwrap_or_default()),
            base,
            "{stage}: adapters on the pretrained model"
        );
        let n = names(&dir.join("model.safetensors"));
        assert!(
            n.iter()
                .all(|t| t == "score.weight" || t.contains(".lora.lora_")),
            "{stage}: {n:?}"
        );
    }
    let job = json(&out.join("pipeline.json"));
    assert_eq!(job["lora"]["rank"], 4);
    assert!(out.join("report.md").is_file());
}

#[test]
fn bench_train_measures_lora_when_asked() {
    let run = |more: &[&str]| -> serde_json::Value {
        let o = rlhf()
            .args(["bench", "train", "--preset", "tiny", "--steps", "1"])
            .args(["--batch-size", "2", "--device", "cpu"])
            .args(more)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let full = run(&[]);
    let lora = run(&["--lora-rank", "4"]);
    assert!(full["lora_rank"].is_null(), "{full}");
    assert_eq!(lora["lora_rank"], 4, "{lora}");
    assert!(lora["train_tokens_per_s"].as_f64().unwrap() > 0.0, "{lora}");
}

/// The `loss/train` column of a stage's metrics.csv.
fn train_losses(dir: &Path) -> Vec<f64> {
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = head.iter().position(|h| *h == "loss/train").unwrap();
    lines
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn checkpointed_activations_train_as_the_plain_backward_and_refuse_dropout() {
    let (inp, base) = setup();
    let d = common::tmp_dir("lora-recompute");
    let run = |name: &str, more: &[&str]| {
        let mut args = sft_args(inp, base, "4");
        let i = args.iter().position(|a| a == "--lora-dropout").unwrap();
        args.drain(i..i + 2);
        let args = with(
            with(args, &["--dropout", "0", "--out", s(&d.join(name))]),
            more,
        );
        rlhf().args(&args).output().unwrap()
    };
    ok(&run("plain", &["--lora-dropout", "0"]));
    ok(&run(
        "recomputed",
        &["--lora-dropout", "0", "--checkpoint-activations"],
    ));
    let (a, b) = (
        train_losses(&d.join("plain")),
        train_losses(&d.join("recomputed")),
    );
    assert_eq!(a.len(), 4);
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-4, "losses {a:?} vs {b:?}");
    }
    let stage = json(&d.join("recomputed/stage.json"));
    assert_eq!(stage["checkpoint_activations"], true, "{stage}");
    // adapters that drop their input cannot be recomputed as they ran
    let o = run(
        "dropout",
        &["--checkpoint-activations", "--lora-dropout", "0.1"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("dropout 0"), "{err}");
}
