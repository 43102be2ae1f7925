//! REINFORCE Leave-One-Out (RLOO, Kool et al. 2019; Ahmadian et al. 2024): k responses are
//! sampled for each prompt, and the baseline of each is the mean return of the other k − 1. It
//! needs no value model: the other samples of the same prompt are the critic.
//!
//! The return of a response is its whole-sequence reward,
//! `R = score − β·Σ_t (log π_RL − log π_SFT)` (the same KL penalty PPO charges per token, summed);
//! its advantage, given to every one of its tokens, is `A_i = R_i − 1/(k−1) Σ_{j≠i} R_j`, which
//! equals `k/(k−1)·(R_i − mean_j R_j)`.

/// The sequence return `score − β·Σ_t (logp_policy[t] − logp_ref[t])` of one response.
pub fn sequence_return(score: f32, logp_policy: &[f32], logp_ref: &[f32], beta: f32) -> f32 {
    debug_assert_eq!(
        logp_policy.len(),
        logp_ref.len(),
        "sequence_return: lengths"
    );
    let kl: f64 = logp_policy
        .iter()
        .zip(logp_ref)
        .map(|(&p, &r)| f64::from(p) - f64::from(r))
        .sum();
    (f64::from(score) - f64::from(beta) * kl) as f32
}

/// Leave-one-out advantages of `returns`, laid out as consecutive groups of `k` responses to
/// the same prompt (`returns.len()` a multiple of `k`, `k ≥ 2`): `A_i = R_i − mean of the other
/// k − 1 returns of its group`. Every group's advantages sum to 0.
pub fn leave_one_out(returns: &[f32], k: usize) -> Vec<f32> {
    debug_assert!(
        k >= 2 && returns.len().is_multiple_of(k),
        "leave_one_out: groups of k ≥ 2"
    );
    returns
        .chunks(k)
        .flat_map(|group| {
            let sum: f64 = group.iter().map(|&r| f64::from(r)).sum();
            group.iter().map(move |&r| {
                let others = (sum - f64::from(r)) / (k - 1) as f64;
                (f64::from(r) - others) as f32
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_is_the_mean_of_the_other_samples() {
        // group 1: R = 1, 2, 3, 6; baselines (2+3+6)/3 = 11/3, (1+3+6)/3 = 10/3, 3, 2
        // → A = −8/3, −4/3, 0, 4 (= 4/3·(R − 3)); group 2: R = 5, 5, 5, 5 → all 0
        let a = leave_one_out(&[1.0, 2.0, 3.0, 6.0, 5.0, 5.0, 5.0, 5.0], 4);
        let want = [-8.0 / 3.0, -4.0 / 3.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0.0];
        for (x, w) in a.iter().zip(want) {
            assert!((x - w).abs() < 1e-6, "{a:?}");
        }
        // k = 2: each one's baseline is the other: (3, −1) → (4, −4)
        assert_eq!(leave_one_out(&[3.0, -1.0], 2), vec![4.0, -4.0]);
    }

    #[test]
    fn the_return_charges_the_summed_kl() {
        // KL = (−1 − −1.5) + (−2 − −1) = 0.5 − 1 = −0.5; R = 1 − 0.1·(−0.5) = 1.05
        let r = sequence_return(1.0, &[-1.0, -2.0], &[-1.5, -1.0], 0.1);
        assert!((r - 1.05).abs() < 1e-6, "{r}");
        assert_eq!(sequence_return(2.0, &[-1.0], &[-1.0], 5.0), 2.0);
    }
}
