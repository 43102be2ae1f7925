//! How much of a policy's reward gain its response length explains. A reward model can learn to
//! prefer longer (or shorter) responses, and a policy can then raise its reward by changing
//! length alone (Singhal et al. 2023, "A Long Way to Go"). The reward of every sample, the
//! policy's and the baseline's together, is regressed on its length (least squares); the gain
//! that length explains is the slope times the change in mean length, and its share of the whole
//! gain says whether the gain is mostly length. Pure arithmetic on host numbers.

use serde::{Deserialize, Serialize};

/// Above this share of the reward gain explained by length, the report flags the gain as mostly
/// length.
pub const MOSTLY_LENGTH: f64 = 0.5;

/// The reward gain of a policy over its baseline and the part of it that length explains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LengthEffect {
    /// Reward per token of length: the least-squares slope over all samples of both models.
    pub slope_per_token: f64,
    /// Mean response length of the policy minus the baseline's (tokens).
    pub length_change: f64,
    /// Mean reward of the policy minus the baseline's.
    pub reward_gain: f64,
    /// `slope_per_token · length_change`: the gain that length alone explains.
    pub explained_by_length: f64,
    /// `explained_by_length / reward_gain` (`null` when there is no gain to explain).
    pub share: Option<f64>,
}

/// The length effect of `(lengths, rewards)` of the policy's samples against the baseline's.
/// `None` without samples, with a non-finite value or when every sample has one length (no
/// slope to fit).
pub fn length_effect(policy: (&[f64], &[f64]), baseline: (&[f64], &[f64])) -> Option<LengthEffect> {
    let (len, rew): (Vec<f64>, Vec<f64>) = policy
        .0
        .iter()
        .zip(policy.1)
        .chain(baseline.0.iter().zip(baseline.1))
        .map(|(&l, &r)| (l, r))
        .unzip();
    let n = len.len();
    if n == 0 || len.iter().chain(&rew).any(|x| !x.is_finite()) {
        return None;
    }
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let (ml, mr) = (mean(&len), mean(&rew));
    let sxx: f64 = len.iter().map(|l| (l - ml).powi(2)).sum();
    if sxx <= 0.0 || policy.0.is_empty() || baseline.0.is_empty() {
        return None;
    }
    let sxy: f64 = len.iter().zip(&rew).map(|(l, r)| (l - ml) * (r - mr)).sum();
    let slope = sxy / sxx;
    let length_change = mean(policy.0) - mean(baseline.0);
    let reward_gain = mean(policy.1) - mean(baseline.1);
    let explained = slope * length_change;
    Some(LengthEffect {
        slope_per_token: slope,
        length_change,
        reward_gain,
        explained_by_length: explained,
        share: (reward_gain.abs() > 1e-12).then(|| explained / reward_gain),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reward_that_is_length_is_explained_by_length() {
        // reward = 0.1 · length exactly: the slope is 0.1, the policy is 10 tokens longer and
        // gains 1.0, all of it length
        let (lp, lb) = ([20.0, 30.0], [10.0, 20.0]);
        let rp: Vec<f64> = lp.iter().map(|l| 0.1 * l).collect();
        let rb: Vec<f64> = lb.iter().map(|l| 0.1 * l).collect();
        let e = length_effect((&lp, &rp), (&lb, &rb)).unwrap();
        assert!((e.slope_per_token - 0.1).abs() < 1e-12, "{e:?}");
        assert_eq!((e.length_change, e.reward_gain), (10.0, 1.0));
        assert!((e.share.unwrap() - 1.0).abs() < 1e-12, "{e:?}");
    }

    #[test]
    fn a_gain_at_the_same_length_is_not_length() {
        // both models answer in 10 and 20 tokens; the policy scores 1 more at every length:
        // pooled points (10, 0), (20, 1) [baseline] and (10, 1), (20, 2) [policy]:
        // mean length 15, mean reward 1; Sxx = 4·25 = 100, Sxy = (−5)(−1)+(5)(0)+(−5)(0)+(5)(1)
        // = 10, slope 0.1; length change 0, so nothing of the gain of 1 is length
        let l = [10.0, 20.0];
        let e = length_effect((&l, &[1.0, 2.0]), (&l, &[0.0, 1.0])).unwrap();
        assert!((e.slope_per_token - 0.1).abs() < 1e-12, "{e:?}");
        assert_eq!((e.length_change, e.reward_gain), (0.0, 1.0));
        assert_eq!(e.share, Some(0.0));
    }

    #[test]
    fn nothing_to_fit_gives_nothing() {
        let l = [12.0, 12.0];
        assert_eq!(length_effect((&l, &[1.0, 2.0]), (&l, &[0.0, 1.0])), None);
        assert_eq!(length_effect((&[], &[]), (&[], &[])), None);
        let e = length_effect((&[1.0, 3.0], &[1.0, 1.0]), (&[1.0, 3.0], &[1.0, 1.0])).unwrap();
        assert_eq!(e.share, None, "no gain: no share");
    }
}
