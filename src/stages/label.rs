//! `rlhf label`: rank sampled responses. `--labeler human` runs the terminal session of
//! `crate::labeler::human` on standard input and output. `--labeler sentiment` is the simulated
//! labeler: it ranks the K responses of each prompt by VADER sentiment (real human word ratings;
//! most positive first), optionally with Bradley–Terry/Plackett–Luce noise at temperature T to
//! mimic the ~73% inter-labeler agreement InstructGPT reports, and says what agreement the noise
//! produced.

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
    /// Responses left out because the noiseless labeler scored them exactly like a better-ranked
    /// response of the same prompt (see [`drop_ties`]).
    #[serde(default)]
    pub tied_dropped: usize,
}

/// Keeps, of each run of equal scores in `order` (best first), only the first response.
///
/// A ranking file has no way to say "these two are equally good", and the RM's loss and accuracy
/// count every ordered pair, so a tie written as an order is a coin flip the RM is trained to
/// reproduce and then graded on. With VADER that is common: about 44% of the bundled job's
/// samples contain no lexicon word (compound exactly 0) and 20% of their pairs are ties. Dropping
/// all but one of a tie keeps every pair the labeler has a preference on, except those of the
/// dropped duplicates.
pub fn drop_ties(order: &[usize], scores: &[f64]) -> Vec<usize> {
    let mut kept: Vec<usize> = Vec::with_capacity(order.len());
    for &i in order {
        if kept.last().is_none_or(|&j| scores[j] != scores[i]) {
            kept.push(i);
        }
    }
    kept
}

/// Ranks every prompt's responses of `samples` and writes rankings JSONL to `out`. Without noise
/// and unless `keep_ties`, responses tied in score with a better one are left out ([`drop_ties`]);
/// with noise a tie is ordered at random, as a person guessing would.
pub fn label_sentiment(
    samples: &Path,
    out: &Path,
    lexicon: &Path,
    noise: f64,
    seed: u64,
    keep_ties: bool,
) -> Result<LabelReport> {
    let scorer = SentimentScorer::from_file(lexicon).map_err(|e| anyhow!(e))?;
    let recs = read_samples(samples)?;
    let mut rng = SplitMix64::new(seed);
    let (mut rankings, mut skipped, mut agree, mut tied) = (Vec::new(), 0, 0.0, 0);
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
        let mut order = noisy_rank(&scores, noise, &mut rng);
        if noise == 0.0 && !keep_ties {
            let kept = drop_ties(&order, &scores);
            tied += order.len() - kept.len();
            order = kept;
            if order.len() < 2 {
                skipped += 1;
                continue;
            }
        }
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
        tied_dropped: tied,
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
