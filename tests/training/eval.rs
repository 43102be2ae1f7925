//! `rlhf eval`: the guard arithmetic on tiny hand-made sample files against values worked out by
//! hand, and the command itself on tiny random checkpoints (files written, numbers consistent
//! with the samples it wrote, a model against itself: KL exactly 0, every prompt a tie).

use crate::common;

use burn::prelude::*;
use rlhf::checkpoint::{self, CheckpointKind};
use rlhf::config::ModelConfig;
use rlhf::data::formats::read_samples;
use rlhf::eval::guards::{distinct_n, frequency_growth, win_outcomes, win_rate, words};
use rlhf::eval::interval::{group_means, mean_interval};
use rlhf::eval::EvalReport;
use rlhf::labeler::sentiment::SentimentScorer;
use rlhf::model::{InitRng, Lm};
use std::path::{Path, PathBuf};
use std::process::Command;

const BASELINE: &str = "\
{\"prompt\":\"p1\",\"responses\":[\"The cat sat\"]}
{\"prompt\":\"p2\",\"responses\":[\"the dog\"]}
";
const POLICY: &str = "\
{\"prompt\":\"p1\",\"responses\":[\"Great great GREAT!\"]}
{\"prompt\":\"p2\",\"responses\":[\"the great great\"]}
";

fn words_of(path: &Path) -> Vec<Vec<String>> {
    read_samples(path)
        .unwrap()
        .iter()
        .flat_map(|r| r.responses.iter().map(|t| words(t)))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn guards_on_hand_made_sample_files() {
    let d = common::tmp_dir("eval-guards");
    let (b, p) = (
        d.join("samples_baseline.jsonl"),
        d.join("samples_policy.jsonl"),
    );
    std::fs::write(&b, BASELINE).unwrap();
    std::fs::write(&p, POLICY).unwrap();
    let (wb, wp) = (words_of(&b), words_of(&p));
    // baseline words: [the cat sat] [the dog] — 5 words, 4 distinct; bigrams the·cat, cat·sat,
    // the·dog — 3, all distinct
    assert!(close(distinct_n(&wb, 1), 4.0 / 5.0));
    assert!(close(distinct_n(&wb, 2), 1.0));
    // policy words: [great great great !] [the great great] — 7 words, 3 distinct (great, !,
    // the); bigrams g·g, g·g, g·!, the·g, g·g — 5, 3 distinct
    assert_eq!(wp[0], vec!["great", "great", "great", "!"]);
    assert!(close(distinct_n(&wp, 1), 3.0 / 7.0));
    assert!(close(distinct_n(&wp, 2), 3.0 / 5.0));
    // a trigram longer than every response: no n-gram at all
    assert_eq!(distinct_n(&[vec!["a".to_string()]], 2), 0.0);
    // shares: great 5/7 (baseline 0), ! 1/7 (0), the 1/7 vs 2/5 (shrank: not listed)
    let g = frequency_growth(&wb, &wp, 10);
    assert_eq!(g.len(), 2, "{g:?}");
    assert_eq!(
        (g[0].word.as_str(), g[0].policy_count, g[0].baseline_count),
        ("great", 5, 0)
    );
    assert!(close(g[0].growth, 5.0 / 7.0));
    assert_eq!(g[1].word, "!");
    assert!(close(g[1].policy_freq, 1.0 / 7.0) && close(g[1].growth, 1.0 / 7.0));
    assert_eq!(frequency_growth(&wb, &wp, 1).len(), 1);
    // the other way round, "the" (2/5 vs 1/7), "cat", "sat", "dog" (1/5 vs 0) grew
    let back = frequency_growth(&wp, &wb, 10);
    let names: Vec<&str> = back.iter().map(|g| g.word.as_str()).collect();
    assert_eq!(names, vec!["the", "cat", "dog", "sat"]);
    assert!(close(back[0].growth, 2.0 / 5.0 - 1.0 / 7.0));
    // win rate: prompt 1 won, 2 and 4 tied, 3 lost → (1 + 2·½) / 4
    let w = win_rate(&[0.5, 0.2, 0.1, 0.3], &[0.1, 0.2, 0.4, 0.3], 1e-9);
    assert_eq!((w.wins, w.ties, w.losses), (1, 2, 1));
    assert!(close(w.rate, 0.5));
    let w = win_rate(&[0.9, 0.8, 0.7], &[0.1, 0.1, 0.8], 1e-9);
    assert!(close(w.rate, 2.0 / 3.0));
    // VADER: "Great great GREAT!" is positive, "The cat sat" neutral: the policy wins prompt 1
    let lex = SentimentScorer::from_file(common::assets().join("vader/vader_lexicon.txt")).unwrap();
    let score = |t: &str| lex.polarity_scores_unrounded(t).compound;
    assert!(score("Great great GREAT!") > 0.5 && score("The cat sat") == 0.0);
}

fn eval(policy: &Path, baseline: &Path, prompts: &Path, out: &Path, extra: &[&Path]) -> EvalReport {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rlhf"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "eval",
            "--device",
            "cpu",
            "--n",
            "6",
            "--max-new-tokens",
            "12",
        ])
        .args(["--ppl-windows", "4", "--policy"])
        .arg(policy)
        .arg("--baseline")
        .arg(baseline)
        .arg("--prompts")
        .arg(prompts)
        .arg("--out")
        .arg(out);
    if let [rm, pretrained] = extra {
        c.arg("--rm").arg(rm).arg("--pretrained").arg(pretrained);
    }
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "eval failed:\n{err}");
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("win rate of policy over baseline"),
        "{table}"
    );
    for f in [
        "eval.json",
        "samples_policy.jsonl",
        "samples_baseline.jsonl",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    rlhf::config::load_json(&out.join("eval.json")).unwrap()
}

#[test]
fn eval_command_on_tiny_checkpoints() {
    let d = common::tmp_dir("eval-cmd");
    let a = common::random_ckpt(&d.join("a"), CheckpointKind::Lm, 1);
    let b = common::random_ckpt(&d.join("b"), CheckpointKind::Lm, 2);
    let rm = common::random_ckpt(&d.join("rm"), CheckpointKind::Rm, 3);
    let prompts = d.join("prompts.jsonl");
    let text: String = (0..8)
        .map(|i| format!("{{\"prompt\":\"Define: Word{i}\"}}\n"))
        .collect();
    std::fs::write(&prompts, text).unwrap();

    let out = d.join("ab");
    let r = eval(&a, &b, &prompts, &out, &[rm.as_path(), a.as_path()]);
    // 6 prompts × 4 responses (the default) from each model, compared pair by pair
    assert_eq!((r.prompts, r.samples_per_prompt), (6, 4));
    let w = r.win_rate;
    assert_eq!(w.wins + w.ties + w.losses, 24);
    assert!(close(w.rate, (w.wins as f64 + 0.5 * w.ties as f64) / 24.0));
    // the numbers agree with the samples it wrote, recomputed here
    let lex = SentimentScorer::from_file(common::assets().join("vader/vader_lexicon.txt")).unwrap();
    let sent = |f: &str| -> Vec<f64> {
        let recs = read_samples(&out.join(f)).unwrap();
        assert_eq!(recs.len(), 6);
        assert!(recs.iter().all(|s| s.responses.len() == 4));
        recs.iter()
            .flat_map(|s| &s.responses)
            .map(|t| lex.polarity_scores_unrounded(t).compound)
            .collect()
    };
    let (sp, sb) = (sent("samples_policy.jsonl"), sent("samples_baseline.jsonl"));
    assert!((r.policy.labeler_score - sp.iter().sum::<f64>() / 24.0).abs() < 1e-9);
    // the interval resamples prompts, each with the mean outcome of its 4 pairs
    let per_prompt = group_means(&win_outcomes(&sp, &sb, 1e-9), 4);
    let want = mean_interval(&per_prompt).unwrap();
    let got = r.win_rate_interval.unwrap();
    assert!(
        close(got.lo, want.lo) && close(got.hi, want.hi),
        "{got:?} vs {want:?}"
    );
    assert!(
        got.lo <= w.rate && w.rate <= got.hi,
        "{got:?} around {}",
        w.rate
    );
    let kl = r.kl_interval.unwrap();
    assert!(kl.lo <= r.kl_nats_per_seq && r.kl_nats_per_seq <= kl.hi);
    let (wb, wp) = (
        words_of(&out.join("samples_baseline.jsonl")),
        words_of(&out.join("samples_policy.jsonl")),
    );
    assert!(close(r.policy.distinct_1, distinct_n(&wp, 1)));
    assert!(close(r.baseline.distinct_2, distinct_n(&wb, 2)));
    // eval.json went through serde_json, whose default float parsing may be 1 ulp off
    let want = frequency_growth(&wb, &wp, 10);
    assert_eq!(r.top_word_growth.len(), want.len());
    for (g, w) in r.top_word_growth.iter().zip(&want) {
        assert_eq!(
            (&g.word, g.baseline_count, g.policy_count),
            (&w.word, w.baseline_count, w.policy_count)
        );
        assert!(close(g.growth, w.growth) && close(g.policy_freq, w.policy_freq));
    }
    assert!(r.policy.mean_response_tokens > 0.0 && r.policy.mean_response_tokens <= 12.0);
    // random models over 512 tokens: perplexities near the vocabulary size
    for ppl in [r.policy.heldout_ppl, r.baseline.heldout_ppl] {
        assert!(ppl > 200.0 && ppl < 2000.0, "held-out ppl {ppl}");
    }
    assert_eq!((r.heldout.windows, r.heldout.window_tokens), (4, 65));
    assert!(r.policy.fluency_ppl.is_some_and(|p| p > 1.0));
    assert!(r.baseline.fluency_ppl.is_some_and(|p| p > 1.0));
    assert!(close(
        r.pretrained_heldout_ppl.unwrap(),
        r.policy.heldout_ppl
    ));
    assert!(r.policy.rm_score.is_some() && r.rm_win_rate.is_some());
    // the length effect is measured on the same samples: its changes are the reported means';
    // random models rarely close a response, so when every response is the full 12 tokens
    // there is no slope to fit and no effect
    let (rp, rb) = (r.policy.rm_score.unwrap(), r.baseline.rm_score.unwrap());
    let dl = r.policy.mean_response_tokens - r.baseline.mean_response_tokens;
    match r.rm_length_effect {
        Some(le) => {
            assert!(close(le.reward_gain, rp - rb), "{le:?}");
            assert!(close(le.length_change, dl), "{le:?}");
            assert!(
                close(le.explained_by_length, le.slope_per_token * dl),
                "{le:?}"
            );
        }
        None => assert_eq!(
            (
                r.policy.mean_response_tokens,
                r.baseline.mean_response_tokens
            ),
            (12.0, 12.0)
        ),
    }
    assert!(r.kl_nats_per_seq.is_finite() && r.kl_nats_per_seq != 0.0);

    // a model against itself: KL exactly 0, the same perplexity; the baseline's samples are
    // draws of their own (not the policy's text again), so the win rate is a fair coin's
    let out = d.join("aa");
    let r = eval(&a, &a, &prompts, &out, &[]);
    assert_ne!(
        std::fs::read_to_string(out.join("samples_policy.jsonl")).unwrap(),
        std::fs::read_to_string(out.join("samples_baseline.jsonl")).unwrap()
    );
    assert!(r.win_rate.ties < 24, "{:?}", r.win_rate);
    assert_eq!(r.kl_nats_per_seq, 0.0);
    let (wi, ki) = (r.win_rate_interval.unwrap(), r.kl_interval.unwrap());
    assert!(wi.lo <= 0.5 && 0.5 <= wi.hi, "{wi:?}");
    assert_eq!((ki.lo, ki.hi), (0.0, 0.0));
    assert_eq!(r.policy.heldout_ppl, r.baseline.heldout_ppl);
    assert!(r.policy.rm_score.is_none() && r.policy.fluency_ppl.is_none());
    assert!(r.rm_length_effect.is_none(), "no RM: no length effect");
}

#[test]
fn sequence_logprobs_match_a_direct_computation_alone_or_batched() {
    use rlhf::eval::lm::{sequence_logprobs, ScoredSeq};
    let dev = Device::flex();
    let mut cfg = ModelConfig::preset("tiny").unwrap();
    cfg.vocab_size = 50;
    let model = Lm::new(&cfg, &mut InitRng::new(0), &dev);
    let a = ScoredSeq {
        context: vec![3, 1, 4],
        target: vec![1, 5, 9],
    };
    let b = ScoredSeq {
        context: vec![2],
        target: vec![7, 1, 8, 2, 8, 1, 8],
    };
    // direct: full logits of [3 1 4 1 5 9], log-softmax on the host, targets at inputs 2, 3, 4
    let seq = [3i64, 1, 4, 1, 5, 9];
    let x = Tensor::<2, Int>::from_data(TensorData::new(seq[..5].to_vec(), [1, 5]), &dev);
    let logits: Vec<f32> = model.forward(x).into_data().try_to_vec::<f32>().unwrap(); // (1, 5, 50)
    let mut direct = 0.0f64;
    for j in 2..5 {
        let row = &logits[j * 50..(j + 1) * 50];
        let m = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        direct += row[seq[j + 1] as usize] as f64 - lse;
    }
    let alone = sequence_logprobs(&model, std::slice::from_ref(&a), 8, 0, &dev).unwrap();
    let batched = sequence_logprobs(&model, &[b.clone(), a.clone(), b], 8, 0, &dev).unwrap();
    assert_eq!(
        (alone[0].tokens, batched[1].tokens, batched[0].tokens),
        (3, 3, 7)
    );
    assert!(
        (alone[0].sum - direct).abs() < 1e-4,
        "{} vs {direct}",
        alone[0].sum
    );
    assert!(
        (batched[1].sum - direct).abs() < 1e-4,
        "{} vs {direct}",
        batched[1].sum
    );
    assert!((batched[0].sum - batched[2].sum).abs() < 1e-6);
    // random init: every token near ln(1/50) = −3.91
    assert!((direct / 3.0 + 50f64.ln()).abs() < 0.2, "{direct}");
}

/// A random tiny LM whose logits are `scale` times larger (the tied embedding scaled): peaked
/// next-token distributions, so two of them are far apart in KL.
fn peaked_ckpt(dir: &Path, scale: f32, seed: u64) -> PathBuf {
    let tok = common::tok();
    let mut cfg = ModelConfig::preset("tiny").unwrap();
    cfg.vocab_size = tok.vocab_size();
    let dev = Device::flex();
    // seeded: the same two models, so the same KL, on every run
    let Lm::Gpt2(mut model) = Lm::new(&cfg, &mut InitRng::new(seed), &dev) else {
        unreachable!("the tiny preset is a GPT-2")
    };
    model.wte.weight = burn::module::Param::from_tensor(model.wte.weight.val().mul_scalar(scale));
    let model = Lm::Gpt2(model);
    common::save_lm(dir, &model, cfg, &tok);
    dir.to_path_buf()
}

/// log-softmax of the next-token logits after each prompt. → one (V,) row per prompt
fn next_token_logprobs(ckpt: &Path, prompts: &[Vec<u32>]) -> Vec<Vec<f64>> {
    let dev = Device::flex();
    let m = checkpoint::load_lm(ckpt, &dev).unwrap().model;
    prompts
        .iter()
        .map(|p| {
            let t = p.len();
            let logits = m.forward(rlhf::util::tensors::ints(
                &p.iter().map(|&x| x as i64).collect::<Vec<_>>(),
                [1, t],
                &dev,
            )); // (1, T, V)
            let v = logits.dims()[2];
            let last = logits.slice([0..1, t - 1..t, 0..v]).reshape([v]);
            let lp = burn::tensor::activation::log_softmax(last, 0);
            rlhf::util::tensors::to_vec(lp)
                .unwrap()
                .into_iter()
                .map(f64::from)
                .collect()
        })
        .collect()
}

/// With one new token, eval's Monte Carlo KL (mean over prompts of log p(x) − log q(x), x ~ p)
/// agrees with the exact Σ p log(p/q) of each prompt's next-token distributions, within 3
/// standard errors (computed from the same distributions); and the exact value is many standard
/// errors from 0 (and so 8 from −KL), so a sign or alignment error fails.
#[test]
fn monte_carlo_kl_matches_the_exact_kl_with_one_token() {
    let d = common::tmp_dir("eval-kl");
    let p = peaked_ckpt(&d.join("p"), 6.0, 1);
    let q = peaked_ckpt(&d.join("q"), 6.0, 2);
    let n = 300;
    let prompts = d.join("prompts.jsonl");
    let text: String = (0..n)
        .map(|i| format!("{{\"prompt\":\"Define: Word{i} and {}\"}}\n", i * 7 % 13))
        .collect();
    std::fs::write(&prompts, text).unwrap();
    let out = d.join("kl");
    let o = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["eval", "--device", "cpu", "--max-new-tokens", "1"])
        .args(["--n", &n.to_string(), "--ppl-windows", "1", "--policy"])
        .arg(&p)
        .arg("--baseline")
        .arg(&q)
        .arg("--prompts")
        .arg(&prompts)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: EvalReport = rlhf::config::load_json(&out.join("eval.json")).unwrap();
    let tok = common::tok();
    let ids: Vec<Vec<u32>> = rlhf::data::formats::read_prompts(&prompts)
        .unwrap()
        .iter()
        .map(|s| tok.encode(&rlhf::data::template::render_prompt(s)).unwrap())
        .collect();
    let (lp, lq) = (next_token_logprobs(&p, &ids), next_token_logprobs(&q, &ids));
    let (mut kl, mut var) = (0.0, 0.0);
    for (a, b) in lp.iter().zip(&lq) {
        let k: f64 = a.iter().zip(b).map(|(x, y)| x.exp() * (x - y)).sum();
        let m2: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| x.exp() * (x - y).powi(2))
            .sum();
        kl += k;
        var += m2 - k * k;
    }
    let (kl, se) = (kl / n as f64, var.sqrt() / n as f64);
    assert!(
        kl > 4.0 * se,
        "the models must differ clearly: KL {kl}, SE {se}"
    );
    assert!(
        (r.kl_nats_per_seq - kl).abs() < 3.0 * se,
        "Monte Carlo KL {} vs exact {kl} (3 SE = {})",
        r.kl_nats_per_seq,
        3.0 * se
    );
}

/// eval scores a response from the token ids the policy generated, exactly as PPO's scorer
/// scores an episode (`prompt + response + <|endoftext|>`), bias included, also for an empty
/// response and for tokens whose decoded text would re-encode differently.
#[test]
fn eval_scores_the_generated_ids_as_ppo_does() {
    let d = common::tmp_dir("eval-rm-ids");
    let policy_dir = common::random_ckpt(&d.join("p"), CheckpointKind::Lm, 4);
    let rm_dir = common::random_ckpt(&d.join("rm"), CheckpointKind::Rm, 3);
    let dev = Device::flex();
    let policy = checkpoint::load_lm(&policy_dir, &dev).unwrap();
    let tok = common::tok();
    let prompt_ids: Vec<Vec<u32>> = ["Define: cat", "Define: dog", "Define: sea"]
        .iter()
        .map(|p| tok.encode(&rlhf::data::template::render_prompt(p)).unwrap())
        .collect();
    let space = tok.encode(" ").unwrap();
    let word = tok.encode(" the sea").unwrap();
    // empty; leading spaces the text's trim() would drop; a plain response
    let gen: Vec<Vec<u32>> = vec![
        vec![],
        space.iter().chain(&space).chain(&word).copied().collect(),
        word.clone(),
    ];
    let [got, _] = rlhf::stages::eval::rm_scores(
        &rm_dir,
        &policy,
        &prompt_ids,
        [&gen, &gen],
        policy.config.model.n_ctx,
        &dev,
    )
    .unwrap();
    let rm = checkpoint::load_rm(&rm_dir, &dev).unwrap();
    let scorer = rlhf::stages::ppo::Scorer::Model {
        rm: Box::new(rm.model),
        bias: rm.config.reward_bias.unwrap() as f32,
    };
    let eps: Vec<rlhf::stages::ppo::Episode> = prompt_ids
        .iter()
        .zip(&gen)
        .map(|(p, g)| rlhf::stages::ppo::Episode {
            prompt: p.clone(),
            actions: g.iter().copied().chain([tok.eot]).collect(),
            ended: true,
            ..Default::default()
        })
        .collect();
    let want = scorer.score(&eps, tok.eot, 2, &dev).unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - f64::from(*w)).abs() < 1e-5,
            "response {i}: eval {g}, PPO {w}"
        );
    }
}
