//! `rlhf label`: rank sampled responses. `--labeler human` runs the terminal session of
//! `crate::labeler::human` on standard input and output. `--labeler sentiment` is the simulated
//! labeler: it ranks the K responses of each prompt by VADER sentiment (real human word ratings; most positive first), optionally with
//! Bradley–Terry/Plackett–Luce noise at temperature T to mimic the ~73% inter-labeler agreement
//! InstructGPT reports, and says what agreement the noise produced.

use crate::data::formats::read_samples;
use crate::data::rankings::Ranking;
use crate::labeler::bradley_terry::{noisy_rank, pairwise_agreement, sorted_rank, SplitMix64};
use crate::labeler::distinct_responses;
use crate::labeler::sentiment::SentimentScorer;
use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a labeling run did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelReport {
    pub prompts: usize,
    pub ranked: usize,
    /// Prompts left with fewer than 2 distinct non-empty responses (not rankable).
    pub skipped: usize,
    /// Mean pairwise agreement of the written rankings with the noiseless sentiment order.
    pub agreement: f64,
}

/// Ranks every prompt's responses of `samples` and writes rankings JSONL to `out`.
pub fn label_sentiment(
    samples: &Path,
    out: &Path,
    lexicon: &Path,
    noise: f64,
    seed: u64,
) -> Result<LabelReport> {
    let scorer = SentimentScorer::from_file(lexicon).map_err(|e| anyhow!(e))?;
    let recs = read_samples(samples)?;
    let mut rng = SplitMix64::new(seed);
    let (mut rankings, mut skipped, mut agree) = (Vec::new(), 0, 0.0);
    for r in &recs {
        let resp = distinct_responses(&r.responses);
        if resp.len() < 2 {
            skipped += 1;
            continue;
        }
        let scores: Vec<f64> = resp
            .iter()
            .map(|x| scorer.polarity_scores_unrounded(x).compound)
            .collect();
        let order = noisy_rank(&scores, noise, &mut rng);
        agree += pairwise_agreement(&order, &sorted_rank(&scores));
        rankings.push(Ranking {
            prompt: r.prompt.clone(),
            responses: order.iter().map(|&i| resp[i].clone()).collect(),
        });
    }
    crate::data::formats::write_jsonl(out, &rankings)?;
    let n = rankings.len();
    Ok(LabelReport {
        prompts: recs.len(),
        ranked: n,
        skipped,
        agreement: if n > 0 { agree / n as f64 } else { f64::NAN },
    })
}

/// `rlhf label --labeler human`: a terminal session on standard input/output (see
/// `crate::labeler::human`), appending to `out` and resuming from it.
pub fn label_human(samples: &Path, out: &Path) -> Result<crate::labeler::human::HumanReport> {
    let recs = read_samples(samples)?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    crate::labeler::human::run_session(&recs, out, stdin.lock(), stdout.lock())
}
