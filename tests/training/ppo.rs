//! PPO on the tiny preset: with a known reward (count of one token) the reward rises while the
//! KL stays finite; a large β pins the policy to the reference; ptx 0 reads no pretraining data
//! and ptx > 0 lowers the pretraining loss; the value model starts at the normalised reward; the
//! rollout's log-probs are of the (tempered) distribution it sampled; the first minibatch's
//! ratio is 1. Plus the tensor losses against the pure functions of `rlhf::rl` (values and
//! gradients). RLOO (`--algo rloo`) raises the known reward with no value model. PPO and RLOO
//! runs killed mid-run and resumed are in `tests/commands/recovery.rs`.

use crate::common;

use burn::prelude::*;
use rlhf::config::ModelConfig;
use rlhf::config::TrainConfig;
use rlhf::stages::ppo::loss::{policy_loss, value_loss};
use rlhf::stages::ppo::PpoConfig;
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
    let mut c = PpoConfig::for_job(rlhf::stages::ppo::PpoDefaults::Tiny);
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
        lora: None,
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
fn rloo_raises_the_known_reward_without_a_value_model() {
    let mut c = cfg(24);
    (c.algo, c.rloo_k) = (rlhf::stages::ppo::Algo::Rloo, 4);
    let (s, out) = run("rloo", c, false);
    let score = column(&out, "ppo/rm_score");
    let (early, late) = (mean(&score[..4]), mean(&score[20..]));
    assert!(
        late > early + 1.0 && late > 2.0 * early.max(0.25),
        "commas per response should rise clearly: {early:.2} -> {late:.2} ({score:?})"
    );
    assert_eq!(
        s.episodes,
        24 * 16,
        "k = 4 responses to each of 4 prompts per iteration"
    );
    // no value model: none trained, none saved, no value loss
    assert!(column(&out, "loss/value").iter().all(|v| v.is_nan()));
    assert!(out.join("ckpt/model.safetensors").is_file());
    assert!(!out.join("ckpt/value").exists());
    let stage: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stage.json")).unwrap()).unwrap();
    assert_eq!(stage["algo"], "rloo");
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

/// The tensor losses equal the pure functions; the policy-loss gradient equals the analytic one
/// and the value-loss gradient finite differences. The masked column (a prompt position) holds
/// numbers that would change every loss and gradient if the mask were ignored.
#[test]
fn tensor_losses_match_the_pure_functions() {
    let dev = Device::flex().autodiff();
    // one row of 4 positions, the first masked out (a prompt position)
    let new = [0.7f32, -1.0, -0.5, -2.0];
    let old = [-0.9f32, -1.2, -0.4, -1.0];
    let adv = [3.0f32, 1.0, -0.5, 2.0];
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
    assert_eq!(g[0], 0.0, "no gradient through a masked position");
    for (a, b) in g[1..].iter().zip(&want_g) {
        assert!((a - b).abs() < 1e-6, "{g:?} vs {want_g:?}");
    }

    // position 2 is clipped (|v − v_old| > 0.2 and the clipped error is larger), 1 and 3 not
    let v_new = [5.0f32, 0.5, 1.5, -0.3];
    let v_old = [-2.0f32, 0.4, 1.0, 0.0];
    let ret = [9.0f32, 1.0, 1.2, -1.0];
    let vl_of = |v: &[f32], dev: &Device| {
        value_loss(
            floats(v, [1, 4], dev),
            floats(&v_old, [1, 4], dev),
            floats(&ret, [1, 4], dev),
            floats(&mask, [1, 4], dev),
            0.2,
        )
    };
    let vn = floats(&v_new, [1, 4], &dev).require_grad();
    let vl = value_loss(
        vn.clone(),
        floats(&v_old, [1, 4], &dev),
        floats(&ret, [1, 4], &dev),
        floats(&mask, [1, 4], &dev),
        0.2,
    );
    let want = rlhf::rl::ppo_value_loss(&v_new[1..], &v_old[1..], &ret[1..], 0.2);
    let got = to_vec(vl.clone()).unwrap()[0];
    assert!((got - want.loss).abs() < 1e-6, "{got} vs {}", want.loss);
    let vg = to_vec(vn.grad(&vl.backward()).unwrap()).unwrap();
    // central differences in f64 of the pure function (the masked entry's derivative is 0)
    let h = 1e-3f32;
    for i in 0..4 {
        let fd = {
            let (mut up, mut down) = (v_new, v_new);
            up[i] += h;
            down[i] -= h;
            let f = |v: &[f32]| f64::from(to_vec(vl_of(v, &Device::flex())).unwrap()[0]);
            (f(&up) - f(&down)) / (2.0 * f64::from(h))
        };
        assert!(
            (f64::from(vg[i]) - fd).abs() < 1e-3,
            "value-loss gradient at {i}: {} vs finite difference {fd} ({vg:?})",
            vg[i]
        );
    }
    assert_eq!(vg[0], 0.0, "no value gradient through a masked position");
}

/// The tiny fixture policy, its trunk as a zero-head value model, and the fixture's prompts
/// as token ids.
fn fixture_models() -> (rlhf::model::Lm, rlhf::model::RewardModel, Vec<Vec<u32>>) {
    let dev = Device::flex();
    let (base, _, prompts) = fixture();
    let policy = rlhf::checkpoint::load_lm(base, &dev).unwrap().model.valid();
    let value = rlhf::model::RewardModel::with_zero_head(policy.clone(), &dev);
    let tok = common::tok();
    let ids = rlhf::data::formats::read_prompts(prompts)
        .unwrap()
        .iter()
        .map(|p| tok.encode(&rlhf::data::template::render_prompt(p)).unwrap())
        .collect();
    (policy, value, ids)
}

/// The value model starts as the reward model *with* its normalisation bias: V₀(s_t) of every
/// rollout state is the RM's normalised score of that state (the scores PPO gets include it).
#[test]
fn value_model_starts_at_the_normalised_reward() {
    let dev = Device::flex();
    let (policy, _, prompts) = fixture_models();
    let (base, corpus, prompt_file) = fixture();
    let d = common::tmp_dir("ppo-value-bias");
    let rm = rlhf::model::RewardModel::from_trunk(
        policy.clone(),
        &mut rlhf::model::InitRng::new(0),
        &dev,
    );
    let bias = 3.0;
    let cc = rlhf::checkpoint::CheckpointConfig {
        kind: rlhf::checkpoint::CheckpointKind::Rm,
        stage: "rm".into(),
        model: rlhf::checkpoint::load_lm(base, &dev).unwrap().config.model,
        reward_bias: Some(bias),
        reward_gain: None,
        lora: None,
    };
    let st = rlhf::checkpoint::TrainState {
        step: 0,
        rng: rlhf::util::rng::Rng::new(0),
        finished: true,
        extra: serde_json::Value::Null,
    };
    rlhf::checkpoint::save(rlhf::checkpoint::SaveRequest {
        dir: &d.join("rm"),
        model: &rm,
        config: &cc,
        tok: &common::tok(),
        optim: None,
        state: &st,
    })
    .unwrap();
    let job = PpoJob {
        lora: None,
        policy: base.clone(),
        reference: None,
        reward: RewardSource::Model(d.join("rm")),
        value_init: None,
        prompts: prompt_file.clone(),
        ptx_corpus: vec![corpus.clone()],
        out: d.join("ppo"),
        cfg: cfg(1),
        resume: false,
    };
    let (value, value_bias) = ppo::initial_value(&job, &policy, None, &dev).unwrap();
    assert_eq!(value_bias, bias as f32);
    let sampling = rlhf::model::generate::SampleConfig {
        max_new_tokens: 6,
        ..Default::default()
    };
    let eot = common::tok().eot;
    let m = rlhf::stages::ppo::RolloutModels {
        policy: &policy,
        reference: &policy,
        value: Some((&value, value_bias)),
    };
    let mut rng = rlhf::util::rng::Rng::new(3);
    let eps =
        rlhf::stages::ppo::rollout(&m, &prompts[..4], &sampling, eot, 4, &mut rng, &dev).unwrap();
    for e in &eps {
        // state s_t = prompt + the first t actions; the RM reads its last token
        let states: Vec<Vec<u32>> = (0..e.actions.len())
            .map(|t| e.prompt.iter().chain(&e.actions[..t]).copied().collect())
            .collect();
        let g = rlhf::data::pairs::TokRanking { seqs: states };
        let scores =
            to_vec(rlhf::model::score::group_rewards(&rm, &[&g], eot, &dev).rewards).unwrap();
        for (t, (v, r)) in e.values.iter().zip(&scores).enumerate() {
            let want = r + bias as f32;
            assert!(
                (v - want).abs() < 1e-3,
                "V₀(s_{t}) = {v}, the RM's normalised score of s_{t} is {want}"
            );
        }
    }
    // the bias rides in the value checkpoint, so a resumed run adds the same constant
    let mut c = cfg(1);
    c.rollout_batch = 4;
    c.minibatch = 4;
    ppo::run(PpoJob { cfg: c, ..job }, &dev).unwrap();
    let v = rlhf::checkpoint::load_rm(&d.join("ppo/ckpt/value"), &dev).unwrap();
    assert_eq!(v.config.reward_bias, Some(bias));
}

/// At temperature T the rollout's log π_old is of the distribution the action was drawn from,
/// softmax(l/T): the frequency of each sampled first token matches exp(log π_old).
#[test]
fn rollout_logprobs_are_of_the_sampling_distribution() {
    let dev = Device::flex();
    let (policy, value, prompts) = fixture_models();
    let n = 1500;
    let many: Vec<Vec<u32>> = vec![prompts[0].clone(); n];
    let sampling = rlhf::model::generate::SampleConfig {
        temperature: 0.5,
        max_new_tokens: 1,
        ..Default::default()
    };
    let m = rlhf::stages::ppo::RolloutModels {
        policy: &policy,
        reference: &policy,
        value: Some((&value, 0.0)),
    };
    let mut rng = rlhf::util::rng::Rng::new(9);
    let eot = common::tok().eot;
    let eps = rlhf::stages::ppo::rollout(&m, &many, &sampling, eot, 256, &mut rng, &dev).unwrap();
    let mut by_token: std::collections::BTreeMap<u32, (usize, f32)> = Default::default();
    for e in &eps {
        let entry = by_token.entry(e.actions[0]).or_insert((0, e.logp_old[0]));
        entry.0 += 1;
        assert!(
            (entry.1 - e.logp_old[0]).abs() < 1e-4,
            "one prompt, one distribution"
        );
    }
    let mut top: Vec<(usize, f32)> = by_token.values().copied().collect();
    top.sort_by_key(|t| std::cmp::Reverse(t.0));
    for &(count, logp) in top.iter().take(3) {
        let (f, p) = (count as f64 / n as f64, f64::from(logp).exp());
        let se = (p * (1.0 - p) / n as f64).sqrt();
        assert!(
            (f - p).abs() < 4.5 * se.max(1e-3),
            "sampled {f:.3} of the time, exp(log π_old) = {p:.3} ({top:?})"
        );
    }
}

/// Before any update the new policy is the old one: the first minibatch's ratio is 1, so its
/// approx-KL is 0 and nothing is clipped (a misaligned log-prob or a temperature used by the
/// rollout but not by the update would break this).
#[test]
fn first_minibatch_ratio_is_one() {
    let mut c = cfg(1);
    (c.ppo_epochs, c.minibatch, c.temperature) = (1, c.rollout_batch, 0.7);
    let (_, out) = run("ratio-one", c, false);
    let kl = column(&out, "ppo/approx_kl");
    let clip = column(&out, "ppo/clip_frac");
    assert!(kl[0].abs() < 1e-6, "approx KL before any update {kl:?}");
    assert_eq!(clip[0], 0.0, "clip fraction before any update");
}
