//! 95% intervals for what the evaluation measures, so a target is judged by what the data can
//! tell and not by one draw: a percentile bootstrap over prompts (each prompt's value is one
//! unit; prompts are resampled with replacement, the statistic recomputed on each resample, and
//! the 2.5th and 97.5th percentiles taken), with a fixed seed so the same run gives the same
//! interval. Pure arithmetic on host numbers.

use crate::util::rng::Rng;
use serde::{Deserialize, Serialize};

/// Resamples of the bootstrap: the percentiles move by well under 0.005 between seeds at this
/// count for the default job's ~240 prompts.
pub const RESAMPLES: usize = 2000;

/// The seed of every bootstrap, so an interval is a property of the data.
const SEED: u64 = 0x1b00_7575;

/// A 95% interval `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

/// How a measurement with its interval stands against a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The whole interval is on the target's side.
    Pass,
    /// The interval straddles the target: this run cannot tell.
    Unclear,
    /// The whole interval is on the wrong side.
    Fail,
}

impl Interval {
    /// The verdict for a target `value ≥ min`.
    pub fn at_least(&self, min: f64) -> Verdict {
        if self.lo >= min {
            Verdict::Pass
        } else if self.hi < min {
            Verdict::Fail
        } else {
            Verdict::Unclear
        }
    }

    /// The verdict for a target `value ≤ max`.
    pub fn at_most(&self, max: f64) -> Verdict {
        if self.hi <= max {
            Verdict::Pass
        } else if self.lo > max {
            Verdict::Fail
        } else {
            Verdict::Unclear
        }
    }
}

/// The mean of each run of `per` consecutive values (a prompt's responses), the last run
/// possibly shorter: the per-prompt units the intervals resample.
pub fn group_means(values: &[f64], per: usize) -> Vec<f64> {
    values
        .chunks(per.max(1))
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect()
}

/// The 95% bootstrap interval of the mean of `values` (one per prompt). `None` without values
/// or when one is not finite.
pub fn mean_interval(values: &[f64]) -> Option<Interval> {
    ratio_interval(&values.iter().map(|&v| (v, 1.0)).collect::<Vec<_>>())
}

/// The 95% bootstrap interval of `Σ num / Σ den` over `parts` (one `(num, den)` per prompt):
/// for a statistic pooled over prompts of unequal weight, such as a pairwise accuracy over
/// prompts with different numbers of pairs. `None` without parts, with a non-finite part or
/// with a zero total weight.
pub fn ratio_interval(parts: &[(f64, f64)]) -> Option<Interval> {
    let n = parts.len();
    let finite = parts.iter().all(|(a, b)| a.is_finite() && b.is_finite());
    if n == 0 || !finite || parts.iter().map(|p| p.1).sum::<f64>() <= 0.0 {
        return None;
    }
    let mut rng = Rng::new(SEED);
    let mut stats: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| {
            let (mut num, mut den) = (0.0, 0.0);
            for _ in 0..n {
                let (a, b) = parts[rng.below(n)];
                num += a;
                den += b;
            }
            (den > 0.0).then(|| num / den)
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    let at = |q: f64| stats[((q * (stats.len() - 1) as f64).round() as usize).min(stats.len() - 1)];
    Some(Interval {
        lo: at(0.025),
        hi: at(0.975),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_has_a_point_interval() {
        let i = mean_interval(&[0.5; 40]).unwrap();
        assert_eq!((i.lo, i.hi), (0.5, 0.5));
    }

    #[test]
    fn the_interval_of_a_coin_matches_the_normal_approximation() {
        // 200 prompts, 120 wins: mean 0.6, standard error sqrt(0.6·0.4/200) = 0.03464, so the
        // normal 95% interval is 0.6 ± 1.96·0.03464 = [0.532, 0.668]; the bootstrap agrees to
        // within its resampling noise (~0.005)
        let v: Vec<f64> = (0..200).map(|i| if i < 120 { 1.0 } else { 0.0 }).collect();
        let i = mean_interval(&v).unwrap();
        assert!((i.lo - 0.532).abs() < 0.01, "{i:?}");
        assert!((i.hi - 0.668).abs() < 0.01, "{i:?}");
    }

    #[test]
    fn a_pooled_ratio_weights_prompts_by_their_pairs() {
        // prompt A: 3 of 3 pairs right, prompt B: 0 of 1: pooled 0.75 (not the mean 0.5); every
        // resample is a mix of the two, so the interval holds 0.75 and stays inside [0, 1]
        let parts = [(3.0, 3.0), (0.0, 1.0)];
        let i = ratio_interval(&parts.repeat(50)).unwrap();
        assert!(
            i.lo < 0.75 && 0.75 < i.hi && i.lo > 0.6 && i.hi < 0.9,
            "{i:?}"
        );
    }

    #[test]
    fn verdicts_read_the_interval_not_the_mean() {
        let i = Interval { lo: 0.72, hi: 0.78 };
        assert_eq!(i.at_least(0.75), Verdict::Unclear);
        assert_eq!(i.at_least(0.70), Verdict::Pass);
        assert_eq!(i.at_least(0.80), Verdict::Fail);
        assert_eq!(i.at_most(0.80), Verdict::Pass);
        assert_eq!(i.at_most(0.75), Verdict::Unclear);
        assert_eq!(i.at_most(0.70), Verdict::Fail);
    }

    #[test]
    fn nothing_to_resample_gives_no_interval() {
        assert_eq!(mean_interval(&[]), None);
        assert_eq!(mean_interval(&[1.0, f64::NAN]), None);
        assert_eq!(ratio_interval(&[(0.0, 0.0)]), None);
    }

    #[test]
    fn the_same_values_give_the_same_interval() {
        let v: Vec<f64> = (0..97).map(|i| (i as f64 * 0.37).sin()).collect();
        assert_eq!(mean_interval(&v), mean_interval(&v));
    }
}
