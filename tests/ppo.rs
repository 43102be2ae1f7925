//! PPO on the tiny preset: with a known reward (count of one token) the reward rises while the
//! KL stays finite; a large β pins the policy to the reference; ptx 0 reads no pretraining data
//! and ptx > 0 lowers the pretraining loss; an interrupted run resumes to the same weights.
//! Plus the tensor losses against the pure functions of `rlhf::rl` (values and gradients).

mod common;

use burn::prelude::*;
use rlhf::config::ModelConfig;
use rlhf::config::PpoConfig;
use rlhf::config::TrainConfig;
use rlhf::ppo::loss::{policy_loss, value_loss};
use rlhf::stages::ppo::{self, PpoJob, PpoSummary, RewardSource};
use rlhf::stages::pretrain::{self, PretrainJob};
use rlhf::util::tensors::{floats, to_vec};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A tiny model pretrained briefly on Emma (shared by the tests of this binary), the corpus
/// file and a prompts file.
fn fixture() -> &'static (PathBuf, PathBuf, PathBuf) {
    static F: OnceLock<(PathBuf, PathBuf, PathBuf)> = OnceLock::new();
    F.get_or_init(|| {
        let d = common::tmp_dir("ppo-fixture");
        let text = std::fs::read_to_string(common::assets().join("austen/emma.txt")).unwrap();
        let corpus = d.join("corpus.txt");
        std::fs::write(&corpus, text.chars().take(200_000).collect::<String>()).unwrap();
        let mut train = TrainConfig::pretrain();
        (train.steps, train.batch_size, train.warmup) = (60, 8, 5);
        (train.eval_every, train.eval_batches, train.checkpoint_every) = (60, 2, 60);
        train.lr = 3e-3;
        let job = PretrainJob {
            corpus: vec![corpus.clone()],
            tok: common::tok(),
            model: ModelConfig::preset("tiny").unwrap(),
            train,
            val_fraction: 0.05,
            out: d.join("base"),
            resume: false,
        };
        pretrain::run(job, &Device::flex()).unwrap();
        let prompts = d.join("prompts.jsonl");
        let words = [
            "Emma",
            "Harriet",
            "Mr. Knightley",
            "Highbury",
            "a letter",
            "the weather",
            "a ball",
            "Mrs. Weston",
            "the vicar",
            "a walk",
            "Jane",
            "dinner",
        ];
        let lines: Vec<String> = words
            .iter()
            .map(|w| format!("{{\"prompt\": \"Continue: She thought of {w}\"}}"))
            .collect();
        std::fs::write(&prompts, lines.join("\n")).unwrap();
        (d.join("base"), corpus, prompts)
    })
}

fn cfg(steps: usize) -> PpoConfig {
    let mut c = PpoConfig::for_job(rlhf::config::PpoDefaults::Tiny);
    c.steps = steps;
    c.rollout_batch = 16;
    c.minibatch = 8;
    c.ppo_epochs = 2;
    c.max_new_tokens = 12;
    c.policy_lr = 2e-3;
    c.value_lr = 2e-3;
    c.ptx_coef = 0.0;
    c
}

fn run(name: &str, cfg: PpoConfig, resume: bool) -> (PpoSummary, PathBuf) {
    let (base, corpus, prompts) = fixture();
    let out = std::env::temp_dir().join(format!("rlhf-test-{}-ppo-{name}", std::process::id()));
    if !resume {
        let _ = std::fs::remove_dir_all(&out);
    }
    let job = PpoJob {
        policy: base.clone(),
        reference: None,
        reward: RewardSource::TokenCount {
            text: ",".into(),
            scale: 1.0,
        },
        value_init: None,
        prompts: prompts.clone(),
        ptx_corpus: vec![corpus.clone()],
        out: out.clone(),
        cfg,
        resume,
    };
    (ppo::run(job, &Device::flex()).unwrap(), out)
}

fn column(dir: &Path, name: &str) -> Vec<f64> {
    let (header, rows) = rlhf::train::metrics::read(&dir.join("metrics.csv")).unwrap();
    let i = header.iter().position(|h| h == name).unwrap();
    rows.iter().map(|r| r[i]).collect()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

#[test]
fn known_reward_rises_and_kl_stays_finite() {
    let (s, out) = run("count", cfg(24), false);
    let score = column(&out, "ppo/rm_score");
    let kl = column(&out, "ppo/kl");
    let (early, late) = (mean(&score[..4]), mean(&score[20..]));
    assert!(
        late > early + 1.0 && late > 2.0 * early.max(0.25),
        "commas per response should rise clearly: {early:.2} -> {late:.2} ({score:?})"
    );
    assert!(kl.iter().all(|k| k.is_finite()), "KL {kl:?}");
    assert!(
        mean(&kl[20..]) > 5.0,
        "with β = 0.02 the policy moves far from the reference: {kl:?}"
    );
    assert_eq!(s.ptx_batches, 0, "ptx 0 reads no pretraining batch");
    assert!(column(&out, "loss/ptx").iter().all(|v| v.is_nan()));
    assert!(out.join("ckpt/model.safetensors").is_file());
    assert!(out.join("ckpt/value/model.safetensors").is_file());
}

#[test]
fn large_kl_coefficient_keeps_the_policy_at_the_reference() {
    let mut c = cfg(12);
    c.kl_coef = 20.0;
    let (_, out) = run("bigbeta", c, false);
    let score = column(&out, "ppo/rm_score");
    let kl = column(&out, "ppo/kl");
    // with β = 0.02 the same settings reach ~40 nats per response (all commas, see above)
    assert!(
        mean(&kl) < 1.5 && kl.iter().all(|k| k.abs() < 3.0),
        "KL stays near 0 with β = 20: {kl:?}"
    );
    let (early, late) = (mean(&score[..4]), mean(&score[8..]));
    assert!(
        (late - early).abs() < 0.6,
        "the reward barely moves with β = 20: {early:.2} -> {late:.2}"
    );
}

#[test]
fn ptx_loss_appears_and_falls() {
    let mut c = cfg(10);
    c.ptx_coef = 1.0;
    c.ptx_batch = 4;
    c.policy_lr = 3e-3;
    let (s, out) = run("ptx", c, false);
    let ptx = column(&out, "loss/ptx");
    assert!(ptx.iter().all(|v| v.is_finite()), "{ptx:?}");
    // 10 iterations × 2 epochs × 2 minibatches
    assert_eq!(s.ptx_batches, 40);
    assert!(
        mean(&ptx[7..]) < mean(&ptx[..3]) - 0.05,
        "pretraining loss should fall: {ptx:?}"
    );
}

#[test]
fn interrupted_run_resumes_to_the_same_weights() {
    let mut c = cfg(4);
    c.checkpoint_every = 2;
    let (_, full) = run("resume-full", c.clone(), false);
    let mut half = c.clone();
    half.steps = 2;
    run("resume-part", half, false);
    let (s, part) = run("resume-part", c, true);
    assert_eq!(s.steps, 4);
    let dev = Device::flex();
    let w = |d: &Path| {
        let m = rlhf::checkpoint::load_lm(d, &dev).unwrap().model;
        to_vec(m.h[0].mlp.c_fc.weight.val()).unwrap()
    };
    let (a, b) = (w(&full), w(&part));
    assert!(
        common::max_rel_diff(&a, &b) <= 1e-6,
        "policy weights differ after resume"
    );
    let v = |d: &Path| {
        let m = rlhf::checkpoint::load_rm(&d.join("ckpt/value"), &dev)
            .unwrap()
            .model;
        to_vec(m.score.weight.val()).unwrap()
    };
    assert!(
        common::max_rel_diff(&v(&full), &v(&part)) <= 1e-6,
        "value weights differ"
    );
    let (ka, kb) = (column(&full, "ppo/kl"), column(&part, "ppo/kl"));
    assert_eq!(ka.len(), 4);
    assert_eq!(ka, kb, "the resumed run logs the same iterations");
}

/// The tensor losses equal the pure functions; the policy-loss gradient equals the analytic one.
#[test]
fn tensor_losses_match_the_pure_functions() {
    let dev = Device::flex().autodiff();
    // one row of 4 positions, the first masked out (a prompt position)
    let new = [0.0f32, -1.0, -0.5, -2.0];
    let old = [0.0f32, -1.2, -0.4, -1.0];
    let adv = [0.0f32, 1.0, -0.5, 2.0];
    let mask = [0.0f32, 1.0, 1.0, 1.0];
    let lp = floats(&new, [1, 4], &dev).require_grad();
    let loss = policy_loss(
        lp.clone(),
        floats(&old, [1, 4], &dev),
        floats(&adv, [1, 4], &dev),
        floats(&mask, [1, 4], &dev),
        0.2,
    );
    let want = rlhf::rl::ppo_policy_loss(&new[1..], &old[1..], &adv[1..], 0.2);
    let got = to_vec(loss.clone()).unwrap()[0];
    assert!((got - want.loss).abs() < 1e-6, "{got} vs {}", want.loss);
    let grads = loss.backward();
    let g = to_vec(lp.grad(&grads).unwrap()).unwrap();
    let want_g = rlhf::rl::ppo_policy_loss_grad(&new[1..], &old[1..], &adv[1..], 0.2);
    assert_eq!(g[0], 0.0);
    for (a, b) in g[1..].iter().zip(&want_g) {
        assert!((a - b).abs() < 1e-6, "{g:?} vs {want_g:?}");
    }

    let v_new = [9.0f32, 0.5, 1.5, -0.3];
    let v_old = [9.0f32, 0.4, 1.0, 0.0];
    let ret = [9.0f32, 1.0, 1.2, -1.0];
    let vl = value_loss(
        floats(&v_new, [1, 4], &dev),
        floats(&v_old, [1, 4], &dev),
        floats(&ret, [1, 4], &dev),
        floats(&mask, [1, 4], &dev),
        0.2,
    );
    let want = rlhf::rl::ppo_value_loss(&v_new[1..], &v_old[1..], &ret[1..], 0.2);
    let got = to_vec(vl).unwrap()[0];
    assert!((got - want.loss).abs() < 1e-6, "{got} vs {}", want.loss);
}
