//! Reward-model evaluation: pairwise ranking statistics of host rewards (held-out accuracy
//! during training, the training batch's accuracy in `metrics.csv`).

use serde::{Deserialize, Serialize};

/// Ranking statistics of host rewards (prompt-major, best first within a prompt).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RankStats {
    /// Mean over prompts of −1/C(K,2) Σ log σ(r_w − r_l).
    pub loss: f64,
    /// Fraction of ordered pairs with r_w > r_l.
    pub accuracy: f64,
    /// Mean r_w − r_l over pairs.
    pub margin: f64,
    pub reward_mean: f64,
    pub reward_std: f64,
}

/// Each prompt's `(pairs ranked right, pairs)`: the units a held-out accuracy's interval
/// resamples (`crate::eval::interval::ratio_interval`); their pooled ratio is
/// [`RankStats::accuracy`].
pub fn pair_counts(rewards: &[f32], ks: &[usize]) -> Vec<(f64, f64)> {
    let mut off = 0;
    ks.iter()
        .map(|&k| {
            let r = &rewards[off..off + k];
            off += k;
            let mut right = 0.0;
            for i in 0..k {
                for j in i + 1..k {
                    right += if r[i] > r[j] { 1.0 } else { 0.0 };
                }
            }
            (right, (k * (k - 1) / 2) as f64)
        })
        .collect()
}

/// Loss, accuracy, margin and the rewards' mean and spread of `rewards` ranked in groups of `ks`.
pub fn rank_stats(rewards: &[f32], ks: &[usize]) -> RankStats {
    let (mut loss, mut pairs, mut margin) = (0.0f64, 0.0f64, 0.0f64);
    let mut off = 0;
    for &k in ks {
        let r = &rewards[off..off + k];
        let mut l = 0.0;
        for i in 0..k {
            for j in i + 1..k {
                let d = (r[i] - r[j]) as f64;
                l += (-d).max(0.0) + (-d.abs()).exp().ln_1p(); // softplus(−d) = −log σ(d)
                margin += d;
                pairs += 1.0;
            }
        }
        loss += l / (k * (k - 1) / 2) as f64;
        off += k;
    }
    let n = rewards.len().max(1) as f64;
    let mean = rewards.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = rewards
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    RankStats {
        loss: loss / ks.len().max(1) as f64,
        accuracy: pair_counts(rewards, ks).iter().map(|c| c.0).sum::<f64>() / pairs.max(1.0),
        margin: margin / pairs.max(1.0),
        reward_mean: mean,
        reward_std: var.sqrt(),
    }
}
