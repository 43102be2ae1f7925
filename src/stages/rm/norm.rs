//! The reward model's normalisation: the gain and bias that give the normalisation responses
//! mean score 0 (InstructGPT shifted its RM so before PPO) and standard deviation 1 (as
//! lm-human-preferences, Ziegler et al. 2019), and which responses they are computed on
//! (`rlhf rm --norm-samples`, `--norm-max`). With the scale fixed, PPO's score cap, missing-EOS
//! penalty and KL coefficient mean the same for every reward model.

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

/// `reward = gain · head(h) + bias`: the affine map that takes the raw scores of the
/// normalisation responses to mean 0 and standard deviation 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalisation {
    pub gain: f64,
    pub bias: f64,
}

impl Normalisation {
    /// From raw scores: `gain = 1/sd`, `bias = −mean/sd` (sd over all of them, not n − 1).
    /// Scores that do not vary (or fewer than 2) keep `gain = 1` and only centre: there is no
    /// spread to scale to 1.
    pub fn of_scores(r: &[f32]) -> Self {
        let n = r.len().max(1) as f64;
        let mean = r.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = r.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        let sd = var.sqrt();
        let gain = if r.len() >= 2 && sd.is_finite() && sd > 0.0 {
            1.0 / sd
        } else {
            1.0
        };
        Self {
            gain,
            bias: -mean * gain,
        }
    }

    /// The model with its head multiplied by `gain`, so that `forward + bias` is the
    /// normalised reward: everything that scores with an RM (PPO's reward and value model,
    /// eval, `rlhf score`, the Hugging Face export) reads it without knowing the gain.
    pub fn apply(&self, model: RewardModel) -> RewardModel {
        let score = model.score.weight.map(|w| w.mul_scalar(self.gain));
        RewardModel {
            transformer: model.transformer,
            score: burn::nn::Linear {
                weight: score,
                bias: model.score.bias,
            },
            forwarded: model.forwarded,
        }
    }
}

/// The [`Normalisation`] of the normalisation responses: those of `--norm-samples`, else the
/// training rankings' (`train`), at most `job.norm_max` of them ([`norm_subset`]).
pub(super) fn normalisation(
    model: &RewardModel,
    job: &RmJob,
    train: &[TokRanking],
    tok: &Tok,
    n_ctx: usize,
    device: &Device,
) -> Result<Normalisation> {
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
    Ok(Normalisation::of_scores(&r))
}

/// Default [`super::RmJob::norm_max`]. The bias is a mean: over 1,000 responses its standard error
/// is ~3% of the reward's spread (the sd's, ~2%), and scoring the default job's 9,000 took ~60 s of
/// the RM stage.
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
    fn normalisation_gives_mean_0_and_sd_1() {
        // mean 2, sd 1 (over n): gain 1, bias −2
        let n = Normalisation::of_scores(&[1.0, 3.0]);
        assert_eq!((n.gain, n.bias), (1.0, -2.0));
        // mean 2, sd 2: gain 1/2, bias −1; 0 → −1, 4 → 1
        let n = Normalisation::of_scores(&[0.0, 4.0, 0.0, 4.0]);
        assert_eq!((n.gain, n.bias), (0.5, -1.0));
        // mean 1, sd √(8/3) for 1 − 2, 1, 1 + 2 (deviations −2, 0, 2)
        let n = Normalisation::of_scores(&[-1.0, 1.0, 3.0]);
        assert!((n.gain - (3.0f64 / 8.0).sqrt()).abs() < 1e-15, "{n:?}");
        assert!((n.bias + (3.0f64 / 8.0).sqrt()).abs() < 1e-15, "{n:?}");
        // no spread: only centred
        assert_eq!(
            Normalisation::of_scores(&[5.0]),
            Normalisation {
                gain: 1.0,
                bias: -5.0
            }
        );
        let n = Normalisation::of_scores(&[2.0, 2.0, 2.0]);
        assert_eq!((n.gain, n.bias), (1.0, -2.0));
    }

    /// A freshly drawn tiny reward model on the CPU.
    fn tiny_rm(seed: u64) -> (Device, RewardModel) {
        let dev = Device::flex();
        let cfg = crate::config::ModelConfig {
            vocab_size: 32, // the preset leaves it to the tokenizer
            ..crate::config::ModelConfig::preset("tiny").unwrap()
        };
        let rm = RewardModel::new(&cfg, &mut crate::model::InitRng::new(seed), &dev);
        (dev, rm)
    }

    fn rewards(rm: &RewardModel, idx: &Tensor<2, Int>, lens: &[usize]) -> Vec<f32> {
        rm.forward(idx.clone(), lens)
            .to_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn applying_the_normalisation_scales_the_head_only() {
        let (dev, rm) = tiny_rm(3);
        let idx = Tensor::<2, Int>::from_data([[5, 6, 7, 8], [9, 10, 11, 0]], &dev);
        let before = rewards(&rm, &idx, &[4, 3]);
        let n = Normalisation {
            gain: 4.0,
            bias: -1.0,
        };
        let after = rewards(&n.apply(rm), &idx, &[4, 3]);
        for (b, a) in before.iter().zip(&after) {
            // ×4 is exact in floating point: the head's output is exactly 4 times as large
            assert_eq!(*a, 4.0 * b, "{before:?} → {after:?}");
        }
    }

    #[test]
    fn normalised_rewards_do_not_depend_on_the_raw_scale() {
        // two RMs that rank alike but score on scales 4× apart: once normalised, they give
        // the same rewards, so a cap or a β means the same on both (powers of 2 keep it exact)
        let (dev, small) = tiny_rm(5);
        let large = Normalisation {
            gain: 4.0,
            bias: 0.0,
        }
        .apply(small.clone());
        let idx = Tensor::<2, Int>::from_data([[5, 6, 7, 8], [9, 10, 11, 0], [3, 2, 1, 4]], &dev);
        let lens = [4, 3, 4];
        let normalised = |rm: RewardModel| -> Vec<f64> {
            let n = Normalisation::of_scores(&rewards(&rm, &idx, &lens));
            rewards(&n.apply(rm), &idx, &lens)
                .iter()
                .map(|&x| x as f64 + n.bias)
                .collect()
        };
        let (a, b) = (normalised(small), normalised(large));
        assert_eq!(a, b);
        let mean = a.iter().sum::<f64>() / 3.0;
        let sd = (a.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        assert!(mean.abs() < 1e-6 && (sd - 1.0).abs() < 1e-6, "{a:?}");
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
