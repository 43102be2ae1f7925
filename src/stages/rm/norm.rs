//! The reward model's normalisation bias: the shift that makes the mean score of the
//! normalisation responses 0 (InstructGPT normalised its RM this way before PPO), and which
//! responses it is computed on (`rlhf rm --norm-samples`, `--norm-max`).

use super::job::RmJob;
use crate::data::formats::read_samples;
use crate::data::pairs::{tokenize_rankings, TokRanking};
use crate::data::rankings::Ranking;
use crate::data::tokenizer::Tok;
use crate::model::score::score_groups;
use crate::model::RewardModel;
use anyhow::Result;
use burn::prelude::*;

/// `−mean score` of the normalisation responses: those of `--norm-samples`, else the training
/// rankings' (`train`), at most `job.norm_max` of them ([`norm_subset`]).
pub(super) fn normalisation_bias(
    model: &RewardModel,
    job: &RmJob,
    train: &[TokRanking],
    tok: &Tok,
    n_ctx: usize,
    device: &Device,
) -> Result<f64> {
    let groups = match &job.norm_samples {
        Some(p) => {
            let rs: Vec<Ranking> = read_samples(p)?
                .into_iter()
                .filter(|s| !s.responses.is_empty())
                .map(|s| Ranking {
                    prompt: s.prompt,
                    responses: s.responses,
                })
                .collect();
            tokenize_rankings(tok, &rs, n_ctx)?.0
        }
        None => train.to_vec(),
    };
    let groups = norm_subset(&groups, job.norm_max);
    let (r, _) = score_groups(model, &groups, tok.eot, job.train.batch_size, device)?;
    Ok(-(r.iter().map(|&x| x as f64).sum::<f64>() / r.len().max(1) as f64))
}

/// Default [`super::RmJob::norm_max`]. The bias is a mean: over 1,000 responses its standard error is
/// ~3% of the reward's spread, and scoring the default job's 9,000 took ~60 s of the RM stage.
pub const DEFAULT_NORM_MAX: usize = 1000;

/// The responses the bias is computed on: the first response of every prompt, then the second,
/// and so on until `max` (0: all). Each prompt's responses are independent samples, so any
/// prefix of this order is an unbiased sample of the whole, spread over as many prompts as fit.
pub fn norm_subset(groups: &[TokRanking], max: usize) -> Vec<TokRanking> {
    let total: usize = groups.iter().map(|g| g.seqs.len()).sum();
    if max == 0 || max >= total {
        return groups.to_vec();
    }
    let mut out: Vec<TokRanking> = groups
        .iter()
        .map(|_| TokRanking { seqs: Vec::new() })
        .collect();
    let (mut taken, mut round) = (0, 0);
    while taken < max {
        for (g, o) in groups.iter().zip(out.iter_mut()) {
            if taken < max {
                if let Some(s) = g.seqs.get(round) {
                    o.seqs.push(s.clone());
                    taken += 1;
                }
            }
        }
        round += 1;
    }
    out.retain(|g| !g.seqs.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(ks: &[usize]) -> Vec<TokRanking> {
        // response j of prompt p is the sequence [p, j]
        ks.iter()
            .enumerate()
            .map(|(p, &k)| TokRanking {
                seqs: (0..k).map(|j| vec![p as u32, j as u32]).collect(),
            })
            .collect()
    }

    fn flat(g: &[TokRanking]) -> Vec<Vec<u32>> {
        g.iter().flat_map(|r| r.seqs.clone()).collect()
    }

    #[test]
    fn norm_subset_takes_one_response_per_prompt_in_turn() {
        let g = groups(&[3, 1, 2]);
        // round 0: (0,0) (1,0) (2,0); round 1: (0,1) (2,1) — prompt 1 has no second response
        assert_eq!(
            flat(&norm_subset(&g, 4)),
            vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![2, 0]]
        );
        assert_eq!(
            flat(&norm_subset(&g, 2)),
            vec![vec![0, 0], vec![1, 0]],
            "prompts that get no response are dropped"
        );
        assert_eq!(norm_subset(&g, 2).len(), 2);
        assert_eq!(flat(&norm_subset(&g, 0)), flat(&g), "0 keeps all");
        assert_eq!(flat(&norm_subset(&g, 99)), flat(&g));
    }
}
