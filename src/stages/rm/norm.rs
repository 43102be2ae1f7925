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
use crate::util::rng::Rng;
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
    let groups = norm_subset(&groups, job.norm_max, job.train.seed);
    let (r, _) = score_groups(model, &groups, tok.eot, job.train.batch_size, device)?;
    Ok(-(r.iter().map(|&x| x as f64).sum::<f64>() / r.len().max(1) as f64))
}

/// Default [`super::RmJob::norm_max`]. The bias is a mean: over 1,000 responses its standard error is
/// ~3% of the reward's spread, and scoring the default job's 9,000 took ~60 s of the RM stage.
pub const DEFAULT_NORM_MAX: usize = 1000;

/// The responses the bias is computed on: one response of every prompt, then a second, and so
/// on until `max` (0: all), spread over as many prompts as fit. Which response of a prompt comes
/// in which round is drawn at random (seeded by `seed`): rankings are stored best first, so
/// taking them in stored order would put every prompt's best response in round 0 and the bias
/// would be the mean of the best responses, not of all. With a random order, every response of
/// a prompt is equally likely in every round, and any prefix is an unbiased sample of the whole.
pub fn norm_subset(groups: &[TokRanking], max: usize, seed: u64) -> Vec<TokRanking> {
    let total: usize = groups.iter().map(|g| g.seqs.len()).sum();
    if max == 0 || max >= total {
        return groups.to_vec();
    }
    let mut rng = Rng::new(seed);
    let orders: Vec<Vec<usize>> = groups
        .iter()
        .map(|g| {
            let mut o: Vec<usize> = (0..g.seqs.len()).collect();
            rng.shuffle(&mut o);
            o
        })
        .collect();
    let mut out: Vec<TokRanking> = groups
        .iter()
        .map(|_| TokRanking { seqs: Vec::new() })
        .collect();
    let (mut taken, mut round) = (0, 0);
    while taken < max {
        for ((g, order), o) in groups.iter().zip(&orders).zip(out.iter_mut()) {
            if taken < max {
                if let Some(&j) = order.get(round) {
                    o.seqs.push(g.seqs[j].clone());
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
        for seed in 0..20 {
            let four = norm_subset(&g, 4, seed);
            // round 0 takes one response of each prompt, round 1 one more of prompt 0
            let per_prompt: Vec<usize> = four.iter().map(|r| r.seqs.len()).collect();
            assert_eq!(per_prompt, vec![2, 1, 1], "seed {seed}");
            for (p, r) in four.iter().enumerate() {
                let mut js: Vec<u32> = r.seqs.iter().map(|s| s[1]).collect();
                assert!(r.seqs.iter().all(|s| s[0] == [0, 1, 2][p]));
                js.dedup();
                assert_eq!(js.len(), r.seqs.len(), "no response twice: {four:?}");
            }
            let two = norm_subset(&g, 2, seed);
            assert_eq!(two.len(), 2, "prompts that get no response are dropped");
            assert_eq!(flat(&two).iter().map(|s| s[0]).collect::<Vec<_>>(), [0, 1]);
        }
        assert_eq!(flat(&norm_subset(&g, 0, 1)), flat(&g), "0 keeps all");
        assert_eq!(flat(&norm_subset(&g, 99, 1)), flat(&g));
    }

    #[test]
    fn norm_subset_of_rankings_is_not_the_best_responses() {
        // 1,000 prompts × K = 4, stored best first (response j has rank j): a quarter of the
        // responses, one per prompt, must have a mean rank near the mean of all ranks (1.5);
        // taking round 0 in stored order gives rank 0 for all of them
        let g = groups(&[4; 1000]);
        let sub = norm_subset(&g, 1000, 7);
        let ranks: Vec<f64> = flat(&sub).iter().map(|s| s[1] as f64).collect();
        assert_eq!(ranks.len(), 1000);
        assert_eq!(sub.len(), 1000, "one response from every prompt");
        let mean = ranks.iter().sum::<f64>() / 1000.0;
        // the rank of one random response has sd √1.25 ≈ 1.118: standard error 0.035
        assert!((mean - 1.5).abs() < 4.0 * 0.035, "mean rank {mean}");
    }
}
