//! `rlhf eval`: a policy against a baseline on held-out prompts. Both generate
//! `samples_per_prompt` responses per prompt with the same sampling settings, each from its own
//! random stream of the seed; the labeler judges them pair by pair (win rate, with its interval
//! over prompts), and the guards of `crate::eval` say whether the win is real: KL to the baseline,
//! held-out perplexity (the alignment tax), fluency under the pretrained model, distinct-n,
//! response length and the words whose frequency grew most. Writes `samples_policy.jsonl`,
//! `samples_baseline.jsonl` and `eval.json` into `out`; the fields are documented in
//! `crate::eval`. Sampling and scoring the responses of checkpoints, which `rlhf bon` and the
//! frontier share, is `responses`.

mod responses;

use responses::tokenizer_json;
pub use responses::{default_sampling, rm_scores};
pub(crate) use responses::{fitted_prompts, generate_all, load};

use crate::checkpoint::Loaded;
use crate::data::corpus::tokenize_corpus;
use crate::data::formats::{read_prompts, write_jsonl, SampleRecord};
use crate::data::template::is_conversation;
use crate::eval::guards::{
    distinct_n, frequency_growth, mean, perplexity, win_outcomes, win_rate, words, WinRate,
};
use crate::eval::interval::{group_means, mean_interval};
use crate::eval::length::{length_effect, LengthEffect};
use crate::eval::lm::{sequence_logprobs, spaced_windows, windows_perplexity, ScoredSeq};
use crate::eval::{table, EvalReport, HeldoutInfo, ModelEval};
use crate::labeler::sentiment::SentimentScorer;
use crate::model::generate::{response_room, SampleConfig};
use crate::util::rng::Rng;
use anyhow::{anyhow, bail, Context, Result};
use burn::prelude::*;
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};

/// Everything `rlhf eval` needs.
#[derive(Debug, Clone)]
pub struct EvalJob {
    /// The model under test (e.g. the PPO policy).
    pub policy: PathBuf,
    /// What it is compared with (e.g. the SFT model).
    pub baseline: PathBuf,
    /// Held-out prompts, `{"prompt"}` per line.
    pub prompts: PathBuf,
    /// VADER lexicon of the sentiment labeler.
    pub lexicon: PathBuf,
    /// Reward model to score both with (optional).
    pub rm: Option<PathBuf>,
    /// Pretrained model for the fluency guard (optional).
    pub pretrained: Option<PathBuf>,
    /// Text never trained on, for held-out perplexity (default: Persuasion).
    pub heldout_text: PathBuf,
    /// Windows of the held-out text to measure (each `n_ctx` tokens). Default 32.
    pub ppl_windows: usize,
    /// Output directory.
    pub out: PathBuf,
    /// Use the first `n` prompts (0: all).
    pub n: usize,
    /// Responses each model samples per prompt (at least 1).
    pub samples_per_prompt: usize,
    /// Sampling of the compared responses (default: temperature 0.7, 48 tokens).
    pub sampling: SampleConfig,
    pub seed: u64,
    /// Sequences per forward pass.
    pub batch_size: usize,
}

/// Per-sequence KL estimate terms: log π_policy − log π_baseline summed over the response tokens
/// (closing token included when the response ended by itself). → (per-sequence sums, tokens)
fn kl_terms(
    policy: &Loaded,
    baseline: &Loaded,
    prompts: &[Vec<u32>],
    resp: &[Vec<u32>],
    limit: usize,
    batch: usize,
    device: &Device,
) -> Result<(Vec<f64>, usize)> {
    let seqs: Vec<ScoredSeq> = prompts
        .iter()
        .zip(resp)
        .map(|(p, r)| {
            let mut target = r.clone();
            if r.len() < limit {
                target.push(policy.tok.eot);
            }
            ScoredSeq {
                context: p.clone(),
                target,
            }
        })
        .collect();
    let lp = sequence_logprobs(&policy.model, &seqs, batch, policy.tok.eot, device)?;
    let lb = sequence_logprobs(&baseline.model, &seqs, batch, policy.tok.eot, device)?;
    let n = lp.iter().map(|l| l.tokens).sum();
    Ok((lp.iter().zip(&lb).map(|(a, b)| a.sum - b.sum).collect(), n))
}

/// Perplexity of responses (closing token excluded) under `judge`.
fn fluency(
    judge: &Loaded,
    prompts: &[Vec<u32>],
    resp: &[Vec<u32>],
    batch: usize,
    device: &Device,
) -> Result<Option<f64>> {
    let seqs: Vec<ScoredSeq> = prompts
        .iter()
        .zip(resp)
        .map(|(p, r)| ScoredSeq {
            context: p.clone(),
            target: r.clone(),
        })
        .collect();
    let lps = sequence_logprobs(&judge.model, &seqs, batch, judge.tok.eot, device)?;
    let (sum, n) = lps
        .iter()
        .fold((0.0, 0), |(s, n), l| (s + l.sum, n + l.tokens));
    Ok(perplexity(-sum, n))
}

/// The policy, the baseline and the optional pretrained judge, checked to share one tokenizer.
struct Models {
    policy: Loaded,
    baseline: Loaded,
    pretrained: Option<Loaded>,
}

fn load_models(job: &EvalJob, device: &Device) -> Result<Models> {
    let policy = load(&job.policy, "policy", device)?;
    let baseline = load(&job.baseline, "baseline", device)?;
    let pretrained = match &job.pretrained {
        Some(p) => Some(load(p, "pretrained model", device)?),
        None => None,
    };
    let tj = tokenizer_json(&policy)?;
    for m in std::iter::once(&baseline).chain(pretrained.as_ref()) {
        if tokenizer_json(m)? != tj {
            bail!(
                "{} and {} use different tokenizers; eval compares models of one tokenizer",
                policy.dir.display(),
                m.dir.display()
            );
        }
    }
    Ok(Models {
        policy,
        baseline,
        pretrained,
    })
}

/// Writes `samples_policy.jsonl` and `samples_baseline.jsonl`: one record per prompt with its
/// `per` responses (`prompts` holds each prompt `per` times in a row, as the responses do).
fn write_samples(out: &Path, prompts: &[String], txt: [&[String]; 2], per: usize) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, txt) in [
        ("samples_policy.jsonl", txt[0]),
        ("samples_baseline.jsonl", txt[1]),
    ] {
        let recs: Vec<SampleRecord> = prompts
            .chunks(per.max(1))
            .zip(txt.chunks(per.max(1)))
            .map(|(p, r)| SampleRecord {
                prompt: p[0].clone(),
                responses: r.to_vec(),
            })
            .collect();
        write_jsonl(&out.join(name), &recs)?;
    }
    Ok(())
}

/// What the comparison is made of: the prompts, both models' responses and their scores.
struct Compared {
    prompt_ids: Vec<Vec<u32>>,
    /// Policy's and baseline's responses (token ids; trimmed text).
    gen: [Vec<Vec<u32>>; 2],
    txt: [Vec<String>; 2],
    /// Sentiment (the labeler's compound score) and RM scores of each response.
    sent: [Vec<f64>; 2],
    rm: [Option<Vec<f64>>; 2],
    /// The sampling used (`max_new_tokens` fitted to the context).
    cfg: SampleConfig,
}

/// Generates one response per entry of `prompts` (each prompt repeated once per sample) from
/// each model and scores them.
fn compare(job: &EvalJob, m: &Models, prompts: &[String], device: &Device) -> Result<Compared> {
    let (policy, baseline) = (&m.policy, &m.baseline);
    let scorer = SentimentScorer::from_file(&job.lexicon).map_err(|e| anyhow!(e))?;
    let tok = &policy.tok;
    let n_ctx = policy.model.n_ctx().min(baseline.model.n_ctx());
    let limit = response_room(n_ctx, &job.sampling);
    let prompt_ids = fitted_prompts(tok, prompts, limit, n_ctx)?;
    let cfg = SampleConfig {
        max_new_tokens: limit,
        ..job.sampling.clone()
    };
    let bs = job.batch_size.max(1);
    eprintln!(
        "eval: generating {} responses from each model",
        prompts.len()
    );
    let quiet = ProgressBar::hidden();
    let gen_p = generate_all(policy, &prompt_ids, &cfg, (job.seed, bs), &quiet, device)?;
    // the baseline draws from a stream of its own: with the policy's random numbers, two
    // similar models would give the same text and tie where independent samples differ, and the
    // win rate would not be the chance that a policy sample beats a baseline sample (best-of-n
    // measures its baseline that way too)
    let baseline_seed = Rng::at(job.seed, 0);
    let gen_b = generate_all(
        baseline,
        &prompt_ids,
        &cfg,
        (baseline_seed, bs),
        &quiet,
        device,
    )?;
    let text = |g: &[Vec<u32>]| -> Result<Vec<String>> {
        g.iter()
            .map(|ids| Ok(tok.decode(ids)?.trim().to_string()))
            .collect()
    };
    let (txt_p, txt_b) = (text(&gen_p)?, text(&gen_b)?);
    write_samples(&job.out, prompts, [&txt_p, &txt_b], job.samples_per_prompt)?;
    let sent = |t: &[String]| -> Vec<f64> {
        t.iter()
            .map(|x| scorer.polarity_scores_unrounded(x).compound)
            .collect()
    };
    let rm = match &job.rm {
        Some(rm) => {
            let [p, b] = rm_scores(rm, policy, &prompt_ids, [&gen_p, &gen_b], n_ctx, device)?;
            [Some(p), Some(b)]
        }
        None => [None, None],
    };
    Ok(Compared {
        prompt_ids,
        sent: [sent(&txt_p), sent(&txt_b)],
        gen: [gen_p, gen_b],
        txt: [txt_p, txt_b],
        rm,
        cfg,
    })
}

/// KL(policy ‖ baseline) per response, on temperature-1 samples of the policy (the eval samples
/// when they are exactly that). → (per-sequence KL, tokens)
fn kl_estimate(
    job: &EvalJob,
    m: &Models,
    c: &Compared,
    device: &Device,
) -> Result<(Vec<f64>, usize)> {
    let (cfg, limit, bs) = (&c.cfg, c.cfg.max_new_tokens, job.batch_size.max(1));
    let pure = SampleConfig {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        max_new_tokens: limit,
    };
    let same = cfg.temperature == 1.0 && cfg.top_k == 0 && cfg.top_p >= 1.0;
    let kl_gen = if same {
        c.gen[0].clone()
    } else {
        eprintln!("eval: sampling the policy at temperature 1 for the KL estimate");
        let quiet = ProgressBar::hidden();
        generate_all(
            &m.policy,
            &c.prompt_ids,
            &pure,
            (job.seed, bs),
            &quiet,
            device,
        )?
    };
    kl_terms(
        &m.policy,
        &m.baseline,
        &c.prompt_ids,
        &kl_gen,
        limit,
        bs,
        device,
    )
}

/// Held-out text windows, the same for every model (as long as the shortest context allows).
fn heldout_windows(job: &EvalJob, m: &Models) -> Result<Vec<Vec<u32>>> {
    let mut t_win = m.policy.model.n_ctx().min(m.baseline.model.n_ctx());
    if let Some(p) = &m.pretrained {
        t_win = t_win.min(p.model.n_ctx());
    }
    let files = std::slice::from_ref(&job.heldout_text);
    let stream = tokenize_corpus(&m.policy.tok, files, 0.0)?.train;
    spaced_windows(&stream, t_win + 1, job.ppl_windows.max(1))
}

/// The measurements of one model (`side` 0: the policy, 1: the baseline).
fn model_eval(
    m: &Loaded,
    side: usize,
    c: &Compared,
    judge: Option<&Loaded>,
    windows: &[Vec<u32>],
    bs: usize,
    device: &Device,
) -> Result<ModelEval> {
    let gen = &c.gen[side];
    let w: Vec<Vec<String>> = c.txt[side].iter().map(|t| words(t)).collect();
    let lens: Vec<f64> = gen.iter().map(|g| g.len() as f64).collect();
    Ok(ModelEval {
        checkpoint: m.dir.display().to_string(),
        labeler_score: mean(&c.sent[side]).unwrap_or(0.0),
        rm_score: c.rm[side].as_deref().and_then(mean),
        heldout_ppl: windows_perplexity(&m.model, windows, bs.min(16), device)?,
        fluency_ppl: match judge {
            Some(j) => fluency(j, &c.prompt_ids, gen, bs, device)?,
            None => None,
        },
        distinct_1: distinct_n(&w, 1),
        distinct_2: distinct_n(&w, 2),
        mean_response_tokens: mean(&lens).unwrap_or(0.0),
        empty_responses: gen.iter().filter(|g| g.is_empty()).count(),
    })
}

/// The labeler's win rate over the prompts that are conversations (`None` if there are none).
fn conversation_win_rate(prompts: &[String], sent: &[Vec<f64>; 2]) -> Option<WinRate> {
    let pick = |side: &Vec<f64>| -> Vec<f64> {
        prompts
            .iter()
            .zip(side)
            .filter(|(p, _)| is_conversation(p))
            .map(|(_, &x)| x)
            .collect()
    };
    let (policy, baseline) = (pick(&sent[0]), pick(&sent[1]));
    (!policy.is_empty()).then(|| win_rate(&policy, &baseline, 1e-9))
}

/// How much of the policy's RM-score gain its response lengths explain (`None` without an RM).
fn rm_length_effect(c: &Compared) -> Option<LengthEffect> {
    let lens = |side: usize| -> Vec<f64> { c.gen[side].iter().map(|g| g.len() as f64).collect() };
    match &c.rm {
        [Some(p), Some(b)] => length_effect((&lens(0), p), (&lens(1), b)),
        _ => None,
    }
}

/// Runs the evaluation, writes its files into `job.out`, prints the table; returns the report.
pub fn run(job: &EvalJob, device: &Device) -> Result<EvalReport> {
    let t0 = std::time::Instant::now();
    let m = load_models(job, device)?;
    let mut distinct = read_prompts(&job.prompts)?;
    if job.n > 0 {
        distinct.truncate(job.n);
    }
    let per = job.samples_per_prompt.max(1);
    let prompts: Vec<String> = distinct
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.clone(), per))
        .collect();
    let c = compare(job, &m, &prompts, device)?;
    let (kl, kl_tokens) = kl_estimate(job, &m, &c, device)?;
    let windows = heldout_windows(job, &m)?;
    let bs = job.batch_size.max(1);
    let judge = m.pretrained.as_ref();
    let words_of =
        |side: usize| -> Vec<Vec<String>> { c.txt[side].iter().map(|t| words(t)).collect() };
    let report = EvalReport {
        prompts: distinct.len(),
        samples_per_prompt: per,
        labeler: "sentiment".into(),
        win_rate: win_rate(&c.sent[0], &c.sent[1], 1e-9),
        rm_win_rate: match &c.rm {
            [Some(a), Some(b)] => Some(win_rate(a, b, 1e-9)),
            _ => None,
        },
        conversation_win_rate: conversation_win_rate(&prompts, &c.sent),
        win_rate_interval: mean_interval(&group_means(
            &win_outcomes(&c.sent[0], &c.sent[1], 1e-9),
            per,
        )),
        kl_nats_per_seq: mean(&kl).unwrap_or(0.0),
        kl_nats_per_token: kl.iter().sum::<f64>() / kl_tokens.max(1) as f64,
        kl_interval: mean_interval(&group_means(&kl, per)),
        policy: model_eval(&m.policy, 0, &c, judge, &windows, bs, device)?,
        baseline: model_eval(&m.baseline, 1, &c, judge, &windows, bs, device)?,
        rm_length_effect: rm_length_effect(&c),
        pretrained_heldout_ppl: judge
            .map(|p| windows_perplexity(&p.model, &windows, bs.min(16), device))
            .transpose()?,
        top_word_growth: frequency_growth(&words_of(1), &words_of(0), 10),
        heldout: HeldoutInfo {
            text: job.heldout_text.display().to_string(),
            windows: windows.len(),
            window_tokens: windows.first().map_or(0, |w| w.len()),
        },
        sampling: c.cfg.clone(),
        seed: job.seed,
        seconds: t0.elapsed().as_secs_f64(),
    };
    crate::config::save_json(&report, &job.out.join("eval.json"))?;
    print!("{}", table::format_table(&report));
    Ok(report)
}
