//! `rlhf bon`: best-of-n against the policy it samples from. For each held-out prompt the policy
//! (the SFT model) samples 1 + n_max responses: the first is the baseline, the others the
//! candidates; for each n in 1, 2, 4, …, n_max the reward model picks the best of the first n
//! candidates, and the labeler compares that pick with the baseline, as `rlhf eval` compares two
//! models. The KL of best-of-n from the policy is at most `ln n − (n − 1)/n` nats per response
//! (the value when no two candidates tie; ties, such as identical responses, make it smaller):
//! the table gives this bound and estimates nothing; the sampling defaults to the policy itself
//! (temperature 1), for which the bound holds.
//!
//! Writes `bon.json` (one row per n) and `candidates.jsonl` (every response with its scores, from
//! which the table can be recomputed).

use crate::data::formats::{read_prompts, write_jsonl};
use crate::eval::bon::{best_of, kl_best_of, sizes};
use crate::eval::guards::{mean, win_rate, WinRate};
use crate::labeler::sentiment::SentimentScorer;
use crate::model::generate::{response_room, SampleConfig};
use crate::stages::eval::{fitted_prompts, generate_all, load, rm_scores};
use crate::train::metrics::progress_bar;
use anyhow::{anyhow, bail, Result};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub struct BonJob {
    /// The policy sampled (the SFT model).
    pub policy: PathBuf,
    /// The reward model that picks.
    pub rm: PathBuf,
    /// Held-out prompts.
    pub prompts: PathBuf,
    /// VADER lexicon of the sentiment labeler.
    pub lexicon: PathBuf,
    pub out: PathBuf,
    /// Largest n measured (candidates per prompt).
    pub n_max: usize,
    /// Use the first `limit` prompts (0: all).
    pub limit: usize,
    pub sampling: SampleConfig,
    pub seed: u64,
    /// Sequences per forward pass.
    pub batch_size: usize,
}

/// One n of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BonRow {
    pub n: usize,
    /// `ln n − (n − 1)/n`, nats per response.
    pub kl_nats: f64,
    /// The labeler's win rate of the pick over the baseline sample (ties count half).
    pub win_rate: WinRate,
    /// Mean labeler score (VADER compound) of the picks.
    pub labeler_score: f64,
    /// Mean RM score (bias included) of the picks.
    pub rm_score: f64,
}

/// `bon.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BonReport {
    pub prompts: usize,
    pub policy: String,
    pub rm: String,
    /// The baseline sample's mean labeler and RM scores.
    pub baseline_labeler_score: f64,
    pub baseline_rm_score: f64,
    pub rows: Vec<BonRow>,
    pub sampling: SampleConfig,
    pub seed: u64,
    pub seconds: f64,
}

/// One prompt's responses and scores (`candidates.jsonl`); index 0 is the baseline sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidates {
    pub prompt: String,
    pub responses: Vec<String>,
    pub rm: Vec<f64>,
    pub labeler: Vec<f64>,
}

pub fn run(job: &BonJob, device: &Device) -> Result<BonReport> {
    if job.n_max == 0 {
        bail!("--n-max must be at least 1");
    }
    let t0 = std::time::Instant::now();
    let m = load(&job.policy, "policy", device)?;
    let scorer = SentimentScorer::from_file(&job.lexicon).map_err(|e| anyhow!(e))?;
    let mut prompts = read_prompts(&job.prompts)?;
    if job.limit > 0 {
        prompts.truncate(job.limit);
    }
    let n_ctx = m.model.n_ctx();
    let cfg = SampleConfig {
        max_new_tokens: response_room(n_ctx, &job.sampling),
        ..job.sampling.clone()
    };
    let per = 1 + job.n_max;
    let rows: Vec<Vec<u32>> = fitted_prompts(&m.tok, &prompts, cfg.max_new_tokens, n_ctx)?
        .into_iter()
        .flat_map(|ids| std::iter::repeat_n(ids, per))
        .collect();
    eprintln!(
        "bon: sampling {} responses (1 + {} per prompt) from {}",
        rows.len(),
        job.n_max,
        m.dir.display()
    );
    let pb = progress_bar(rows.len() as u64, "bon");
    let gen = generate_all(&m, &rows, &cfg, (job.seed, job.batch_size), &pb, device)?;
    pb.finish_and_clear();
    let [rm] = rm_scores(&job.rm, &m, &rows, [&gen], n_ctx, device)?;
    let cands = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let at = i * per..(i + 1) * per;
            let responses = gen[at.clone()]
                .iter()
                .map(|g| Ok(m.tok.decode(g)?.trim().to_string()))
                .collect::<Result<Vec<String>>>()?;
            let labeler = responses
                .iter()
                .map(|t| scorer.polarity_scores_unrounded(t).compound)
                .collect();
            Ok(Candidates {
                prompt: p.clone(),
                responses,
                rm: rm[at].to_vec(),
                labeler,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let report = BonReport {
        prompts: prompts.len(),
        policy: m.dir.display().to_string(),
        rm: job.rm.display().to_string(),
        baseline_labeler_score: mean(&cands.iter().map(|c| c.labeler[0]).collect::<Vec<_>>())
            .unwrap_or(0.0),
        baseline_rm_score: mean(&cands.iter().map(|c| c.rm[0]).collect::<Vec<_>>()).unwrap_or(0.0),
        rows: sizes(job.n_max)
            .into_iter()
            .map(|n| row(&cands, n))
            .collect(),
        sampling: cfg,
        seed: job.seed,
        seconds: t0.elapsed().as_secs_f64(),
    };
    crate::util::fs::create_out_dir(&job.out)?;
    write_jsonl(&job.out.join("candidates.jsonl"), &cands)?;
    crate::config::save_json(&report, &job.out.join("bon.json"))?;
    print!("{}", table(&report));
    Ok(report)
}

/// Best-of-`n` over every prompt: the RM's pick among candidates 1..=n against sample 0.
pub fn row(cands: &[Candidates], n: usize) -> BonRow {
    let (mut pick_lab, mut pick_rm, mut base_lab) = (Vec::new(), Vec::new(), Vec::new());
    for c in cands {
        let i = 1 + best_of(&c.rm[1..], n).unwrap_or(0);
        pick_lab.push(c.labeler[i]);
        pick_rm.push(c.rm[i]);
        base_lab.push(c.labeler[0]);
    }
    BonRow {
        n,
        kl_nats: kl_best_of(n),
        win_rate: win_rate(&pick_lab, &base_lab, 1e-9),
        labeler_score: mean(&pick_lab).unwrap_or(0.0),
        rm_score: mean(&pick_rm).unwrap_or(0.0),
    }
}

/// The table `rlhf bon` prints.
pub fn table(r: &BonReport) -> String {
    let mut s = format!(
        "best-of-n on {} prompts (baseline sample: labeler {:.3}, RM {:.3})\
         \n     n  KL bound   win rate   labeler   RM score\n",
        r.prompts, r.baseline_labeler_score, r.baseline_rm_score
    );
    for w in &r.rows {
        s += &format!(
            "{:>6} {:>9.3} {:>10.3} {:>9.3} {:>10.3}\n",
            w.n, w.kl_nats, w.win_rate.rate, w.labeler_score, w.rm_score
        );
    }
    s
}
