//! `rlhf eval`: a policy against a baseline on held-out prompts. Both generate one response per
//! prompt with the same sampling settings and seed; the labeler judges them prompt by prompt (win
//! rate), and the guards of `crate::eval` say whether the win is real: KL to the baseline,
//! held-out perplexity (the alignment tax), fluency under the pretrained model, distinct-n,
//! response length and the words whose frequency grew most. Writes `samples_policy.jsonl`,
//! `samples_baseline.jsonl` and `eval.json` into `out`; the fields are documented in
//! `crate::eval`.

use crate::checkpoint::{self, Loaded};
use crate::data::formats::{read_prompts, write_jsonl, SampleRecord};
use crate::data::template::render_prompt;
use crate::eval::guards::{distinct_n, frequency_growth, mean, perplexity, win_rate, words};
use crate::eval::lm::{sequence_logprobs, spaced_windows, windows_perplexity, ScoredSeq};
use crate::eval::{table, EvalReport, HeldoutInfo, ModelEval};
use crate::labeler::sentiment::SentimentScorer;
use crate::model::generate::{generate_parallel, SampleConfig};
use crate::util::rng::Rng;
use anyhow::{anyhow, bail, Context, Result};
use burn::prelude::*;
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
    /// Sampling of the compared responses (default: temperature 0.7, 48 tokens).
    pub sampling: SampleConfig,
    pub seed: u64,
    /// Sequences per forward pass.
    pub batch_size: usize,
}

/// The sampling `rlhf eval` uses by default: temperature 0.7, no top-k/top-p, 48 new tokens.
pub fn default_sampling() -> SampleConfig {
    SampleConfig {
        temperature: 0.7,
        top_k: 0,
        top_p: 1.0,
        max_new_tokens: 48,
    }
}

/// Tokens `generate` may add after a prompt for a model of context `n_ctx`.
fn max_new(cfg: &SampleConfig, n_ctx: usize) -> usize {
    cfg.max_new_tokens.min(n_ctx.saturating_sub(1)).max(1)
}

/// One response per prompt (token ids, closing token excluded), generated in batches from one
/// RNG seeded with `seed`.
fn generate_all(
    m: &Loaded,
    prompts: &[Vec<u32>],
    cfg: &SampleConfig,
    seed: u64,
    batch: usize,
    device: &Device,
) -> Result<Vec<Vec<u32>>> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(batch.max(1)) {
        out.extend(generate_parallel(
            &m.model, chunk, cfg, m.tok.eot, &mut rng, device,
        )?);
    }
    Ok(out)
}

/// The tokenizer file of a checkpoint, parsed, to check two models read the same tokens.
fn tokenizer_json(m: &Loaded) -> Result<serde_json::Value> {
    crate::config::load_json(&m.dir.join("tokenizer.json"))
}

fn load(path: &Path, what: &str, device: &Device) -> Result<Loaded> {
    let m = checkpoint::load_lm(path, device).with_context(|| format!("loading the {what}"))?;
    Ok(Loaded {
        model: m.model.valid(),
        ..m
    })
}

/// Scores with the RM: reward (bias included) of each (prompt, response) of each list.
fn rm_scores(
    rm: &Path,
    prompts: &[String],
    lists: [&[String]; 2],
    device: &Device,
) -> Result<[Vec<f64>; 2]> {
    use super::rm::{score_groups, tokenize_pair, TokRanking};
    let loaded = checkpoint::load_rm(rm, device)?;
    let bias = loaded.config.reward_bias.unwrap_or(0.0);
    let model = loaded.model.valid();
    let score = |resp: &[String]| -> Result<Vec<f64>> {
        let groups = prompts
            .iter()
            .zip(resp)
            .map(|(p, r)| {
                Ok(TokRanking {
                    seqs: vec![tokenize_pair(&loaded.tok, p, r, loaded.config.model.n_ctx)?],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (r, _) = score_groups(&model, &groups, loaded.tok.eot, 32, device)?;
        Ok(r.into_iter().map(|x| x as f64 + bias).collect())
    };
    Ok([score(lists[0])?, score(lists[1])?])
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

/// Runs the evaluation, writes its files into `job.out`, prints the table; returns the report.
pub fn run(job: &EvalJob, device: &Device) -> Result<EvalReport> {
    let t0 = std::time::Instant::now();
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
    let scorer = SentimentScorer::from_file(&job.lexicon).map_err(|e| anyhow!(e))?;
    let mut prompts = read_prompts(&job.prompts)?;
    if job.n > 0 {
        prompts.truncate(job.n);
    }
    let tok = &policy.tok;
    let n_ctx = policy.model.n_ctx().min(baseline.model.n_ctx());
    let limit = max_new(&job.sampling, n_ctx);
    let keep = n_ctx - limit;
    let prompt_ids: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| {
            let ids = tok.encode(&render_prompt(p))?;
            Ok(ids[ids.len().saturating_sub(keep)..].to_vec())
        })
        .collect::<Result<_>>()?;
    let cfg = SampleConfig {
        max_new_tokens: limit,
        ..job.sampling.clone()
    };
    let bs = job.batch_size.max(1);
    eprintln!(
        "eval: generating {} responses from each model",
        prompts.len()
    );
    let gen_p = generate_all(&policy, &prompt_ids, &cfg, job.seed, bs, device)?;
    let gen_b = generate_all(&baseline, &prompt_ids, &cfg, job.seed, bs, device)?;
    let text = |g: &[Vec<u32>]| -> Result<Vec<String>> {
        g.iter()
            .map(|ids| Ok(tok.decode(ids)?.trim().to_string()))
            .collect()
    };
    let (txt_p, txt_b) = (text(&gen_p)?, text(&gen_b)?);
    std::fs::create_dir_all(&job.out).with_context(|| format!("creating {}", job.out.display()))?;
    for (name, txt) in [
        ("samples_policy.jsonl", &txt_p),
        ("samples_baseline.jsonl", &txt_b),
    ] {
        let recs: Vec<SampleRecord> = prompts
            .iter()
            .zip(txt.iter())
            .map(|(p, r)| SampleRecord {
                prompt: p.clone(),
                responses: vec![r.clone()],
            })
            .collect();
        write_jsonl(&job.out.join(name), &recs)?;
    }
    let sent = |t: &[String]| -> Vec<f64> {
        t.iter()
            .map(|x| scorer.polarity_scores_unrounded(x).compound)
            .collect()
    };
    let (s_p, s_b) = (sent(&txt_p), sent(&txt_b));
    let (rm_p, rm_b) = match &job.rm {
        Some(rm) => {
            let [p, b] = rm_scores(rm, &prompts, [&txt_p, &txt_b], device)?;
            (Some(p), Some(b))
        }
        None => (None, None),
    };
    // KL on temperature-1 samples of the policy (the eval samples when they are exactly that)
    let pure = SampleConfig {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        max_new_tokens: limit,
    };
    let same = cfg.temperature == 1.0 && cfg.top_k == 0 && cfg.top_p >= 1.0;
    let kl_gen = if same {
        gen_p.clone()
    } else {
        eprintln!("eval: sampling the policy at temperature 1 for the KL estimate");
        generate_all(&policy, &prompt_ids, &pure, job.seed, bs, device)?
    };
    let (kl, kl_tokens) = kl_terms(&policy, &baseline, &prompt_ids, &kl_gen, limit, bs, device)?;
    // held-out perplexity on the same windows for every model
    let mut t_win = n_ctx;
    if let Some(m) = &pretrained {
        t_win = t_win.min(m.model.n_ctx());
    }
    let stream =
        super::pretrain::tokenize_corpus(tok, std::slice::from_ref(&job.heldout_text), 0.0)?.train;
    let windows = spaced_windows(&stream, t_win + 1, job.ppl_windows.max(1))?;
    let ppl = |m: &Loaded| windows_perplexity(&m.model, &windows, bs.min(16), device);
    let (wp, wb): (Vec<Vec<String>>, Vec<Vec<String>>) = (
        txt_p.iter().map(|t| words(t)).collect(),
        txt_b.iter().map(|t| words(t)).collect(),
    );
    let model_eval = |m: &Loaded,
                      gen: &[Vec<u32>],
                      s: &[f64],
                      rm: &Option<Vec<f64>>,
                      w: &[Vec<String>]|
     -> Result<ModelEval> {
        let lens: Vec<f64> = gen.iter().map(|g| g.len() as f64).collect();
        Ok(ModelEval {
            checkpoint: m.dir.display().to_string(),
            labeler_score: mean(s).unwrap_or(0.0),
            rm_score: rm.as_deref().and_then(mean),
            heldout_ppl: ppl(m)?,
            fluency_ppl: match &pretrained {
                Some(j) => fluency(j, &prompt_ids, gen, bs, device)?,
                None => None,
            },
            distinct_1: distinct_n(w, 1),
            distinct_2: distinct_n(w, 2),
            mean_response_tokens: mean(&lens).unwrap_or(0.0),
            empty_responses: gen.iter().filter(|g| g.is_empty()).count(),
        })
    };
    let report = EvalReport {
        prompts: prompts.len(),
        labeler: "sentiment".into(),
        win_rate: win_rate(&s_p, &s_b, 1e-9),
        rm_win_rate: match (&rm_p, &rm_b) {
            (Some(a), Some(b)) => Some(win_rate(a, b, 1e-9)),
            _ => None,
        },
        kl_nats_per_seq: mean(&kl).unwrap_or(0.0),
        kl_nats_per_token: kl.iter().sum::<f64>() / kl_tokens.max(1) as f64,
        policy: model_eval(&policy, &gen_p, &s_p, &rm_p, &wp)?,
        baseline: model_eval(&baseline, &gen_b, &s_b, &rm_b, &wb)?,
        pretrained_heldout_ppl: pretrained.as_ref().map(&ppl).transpose()?,
        top_word_growth: frequency_growth(&wb, &wp, 10),
        heldout: HeldoutInfo {
            text: job.heldout_text.display().to_string(),
            windows: windows.len(),
            window_tokens: t_win + 1,
        },
        sampling: cfg,
        seed: job.seed,
        seconds: t0.elapsed().as_secs_f64(),
    };
    crate::config::save_json(&report, &job.out.join("eval.json"))?;
    print!("{}", table::format_table(&report));
    Ok(report)
}
