//! Reward-model stage tests: the loss on a hand-computed case, one forward per response, a rule
//! the RM must learn (≥ 0.9 held-out pairwise accuracy on tiny), and reward normalisation.

use crate::common;

use burn::prelude::*;
use rlhf::checkpoint::{self, CheckpointConfig, SaveRequest, TrainState};
use rlhf::config::ModelConfig;
use rlhf::config::TrainConfig;
use rlhf::model::{InitRng, Lm};
use rlhf::stages::rm::{self, rank_stats, RmJob};
use rlhf::util::rng::Rng;
use std::path::{Path, PathBuf};

#[test]
fn ranking_loss_hand_computed() {
    // prompt 1: K=3, rewards [2, 1, 0] → pairs (2-1, 2-0, 1-0) = (1, 2, 1)
    //   −log σ(1) = ln(1+e^-1) = 0.3132617, −log σ(2) = ln(1+e^-2) = 0.1269280
    //   mean over C(3,2)=3 pairs: (0.3132617·2 + 0.1269280)/3 = 0.2511505
    // prompt 2: K=2, rewards [0, 1] → d = −1: −log σ(−1) = ln(1+e) = 1.3132617
    // loss = (0.2511505 + 1.3132617)/2 = 0.7822061
    // python3 -c "import math;f=lambda d:math.log1p(math.exp(-d));print(((2*f(1)+f(2))/3+f(-1))/2)"
    let dev = Device::flex();
    let r = Tensor::<1>::from_floats([2.0, 1.0, 0.0, 0.0, 1.0], &dev);
    let l = rlhf::kernels::ranking_loss::ranking_loss(r, &[3, 2])
        .unwrap()
        .into_scalar::<f32>();
    assert!((l - 0.782_206_1).abs() < 1e-6, "{l}");
    let s = rank_stats(&[2.0, 1.0, 0.0, 0.0, 1.0], &[3, 2]);
    assert!((s.loss - 0.782_206_1).abs() < 1e-6);
    assert!((s.accuracy - 0.75).abs() < 1e-12); // 3 of 4 pairs ordered right
    assert!(rlhf::kernels::ranking_loss::ranking_loss(
        Tensor::<1>::from_floats([1.0, 2.0], &dev),
        &[3]
    )
    .is_err());
}

/// A random tiny LM checkpoint with the shared test tokenizer, standing in for SFT.
fn base_ckpt(dir: &Path) -> PathBuf {
    let tok = common::tok();
    let mut cfg = ModelConfig::preset("tiny").unwrap();
    cfg.vocab_size = tok.vocab_size();
    let model = Lm::new(&cfg, &mut InitRng::new(0), &Device::flex());
    let cc = CheckpointConfig {
        kind: rlhf::checkpoint::CheckpointKind::Lm,
        stage: "sft".into(),
        model: cfg,
        reward_bias: None,
        reward_gain: None,
        lora: None,
    };
    let st = TrainState {
        step: 0,
        rng: Rng::new(0),
        finished: true,
        extra: serde_json::Value::Null,
    };
    checkpoint::save(SaveRequest {
        dir,
        model: &model,
        config: &cc,
        tok: &tok,
        optim: None,
        state: &st,
    })
    .unwrap()
}

/// Rankings where the response containing "happy" is best; `k` responses per prompt.
fn happy_rankings(path: &Path, n: usize, k: usize) {
    let sft = rlhf::data::formats::read_sft(&common::assets().join("sft.jsonl")).unwrap();
    let plain: Vec<&str> = sft
        .iter()
        .map(|r| r.response())
        .filter(|r| !r.to_lowercase().contains("happ") && r.len() < 80)
        .collect();
    let mut rng = Rng::new(5);
    let mut out = Vec::new();
    for i in 0..n {
        let mut resp: Vec<String> = (0..k)
            .map(|_| plain[rng.below(plain.len())].to_string())
            .collect();
        let words: Vec<&str> = resp[0].split(' ').collect();
        let at = rng.below(words.len() + 1);
        let mut w: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        w.insert(at, "happy".into());
        resp[0] = w.join(" ");
        for (j, r) in resp.iter_mut().enumerate().skip(1) {
            *r = format!("{r} ({i}.{j})"); // keep responses distinct
        }
        out.push(rlhf::data::rankings::Ranking {
            prompt: format!("Continue: story {i}"),
            responses: resp,
        });
    }
    rlhf::data::formats::write_jsonl(path, &out).unwrap();
}

/// Responses the normalisation bias is computed on: fewer than the training responses
/// (240 prompts × 2 in `rm_learns_a_rule_on_tiny`), so the subset's choice matters.
const NORM_MAX: usize = 200;

fn job(dir: &Path, data: PathBuf, steps: usize) -> RmJob {
    let mut train = TrainConfig::rm();
    (
        train.steps,
        train.batch_size,
        train.eval_every,
        train.lr,
        train.warmup,
    ) = (steps, 8, 50, 1e-3, 10);
    RmJob {
        lora: None,
        init: dir.join("base"),
        data,
        out: dir.join("rm"),
        train,
        val_fraction: 0.2,
        skip_invalid: false,
        norm_samples: None,
        norm_max: NORM_MAX,
        dropout: 0.0,
        resume: false,
    }
}

#[test]
fn rm_learns_a_rule_on_tiny() {
    let d = common::tmp_dir("rm-happy");
    base_ckpt(&d.join("base"));
    let data = d.join("happy.jsonl");
    happy_rankings(&data, 300, 2);
    let s = rm::run(job(&d, data.clone(), 150), &Device::flex()).unwrap();
    assert!(
        s.final_eval.accuracy >= 0.9,
        "held-out accuracy {:?}",
        s.final_eval
    );
    assert!(
        s.first_eval.accuracy < 0.8,
        "the rule should not be known before training: {:?}",
        s.first_eval
    );
    // metrics.csv carries the held-out accuracy
    let (h, rows) = rlhf::train::metrics::read(&d.join("rm/metrics.csv")).unwrap();
    let col = h.iter().position(|c| c == "rm/accuracy").unwrap();
    assert!((rows.last().unwrap()[col] - s.final_eval.accuracy).abs() < 1e-5);
    // normalisation: the responses score 0 on average after the bias. The bias is the mean of
    // one response per training prompt (--norm-max below the number of responses), so this
    // fails if that subset is not a fair sample of all responses (e.g. each prompt's best)
    let scored = rlhf::stages::score::score_file(&d.join("rm"), &data, &Device::flex()).unwrap();
    let all: Vec<f64> = scored
        .iter()
        .flat_map(|v| {
            v["rewards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
        })
        .collect();
    let n = all.len() as f64;
    let mean = all.iter().sum::<f64>() / n;
    let sd = (all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    // a simple random sample of `norm_max` responses has standard error sd/√norm_max (taking
    // one per prompt is stratified, so smaller); the best responses are ~sd away from the mean
    let se = sd / (NORM_MAX as f64).sqrt();
    assert!(
        mean.abs() < 3.0 * se,
        "mean normalised reward over all responses {mean:.3} (sd {sd:.3}, 3 SE = {:.3})",
        3.0 * se
    );
    // and their sd is 1: the gain is computed on the same subset, whose sd estimates the whole's
    // within a few percent at 200 responses (the raw scores' sd is far from 1 at 150 steps)
    assert!((sd - 1.0).abs() < 0.1, "sd of normalised rewards {sd:.3}");
    assert!(
        (s.reward_gain - 1.0).abs() > 0.2,
        "raw sd {:.3}: too close to 1 for the check above to show the scaling",
        1.0 / s.reward_gain
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("rm/ckpt/config.json")).unwrap())
            .unwrap();
    // the same number but for serde_json's float parsing, which may land one ulp off
    let gain = cfg["reward_gain"].as_f64().unwrap();
    assert!(
        (gain - s.reward_gain).abs() <= 1e-12 * s.reward_gain.abs(),
        "{gain} vs {}",
        s.reward_gain
    );
}

/// `sequences_per_step` is the reward model's own count of the rows it scored during the steps
/// (not the size of the batch it was handed), so a second forward or a pairwise one shows.
#[test]
fn each_response_is_forwarded_once_per_step() {
    let d = common::tmp_dir("rm-count");
    base_ckpt(&d.join("base"));
    let data = d.join("k4.jsonl");
    happy_rankings(&data, 40, 4);
    let mut j = job(&d, data, 5);
    j.train.eval_every = 1000;
    let s = rm::run(j, &Device::flex()).unwrap();
    // rows scored: 8 prompts × K=4 = 32 sequences a step, not 2·C(4,2)·8 = 96
    assert_eq!(s.sequences_per_step, 32.0);
}

#[test]
fn invalid_rankings_name_file_and_line() {
    let d = common::tmp_dir("rm-bad");
    let f = d.join("bad.jsonl");
    std::fs::write(
        &f,
        "{\"prompt\":\"p\",\"responses\":[\"a\",\"b\"]}\n\
         {\"prompt\":\"p\",\"responses\":[\"a\",\"a\"]}\n\
         {\"prompt\":\"q\",\"responses\":[\"x\"]}\n",
    )
    .unwrap();
    let e = format!(
        "{:#}",
        rlhf::data::rankings::read_rankings(&f, false).unwrap_err()
    );
    assert!(e.contains("bad.jsonl:2") && e.contains("same text"), "{e}");
    let (ok, rep) = rlhf::data::rankings::read_rankings(&f, true).unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(rep.skipped.len(), 2);
    assert!(rep.skipped[1].starts_with("line 3"));
}
