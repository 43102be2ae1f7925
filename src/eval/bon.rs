//! Best-of-n: of n samples from a policy, the one the reward model scores highest. The pure
//! parts: which sample is picked, the KL of the best-of-n policy from the one sampled, and the
//! sizes measured.

/// KL(best-of-n ‖ the sampled policy) in nats per response, `ln n − (n − 1)/n` (Stiennon et al.
/// 2020, appendix; an upper bound that is exact when no two samples tie). 0 for n ≤ 1.
pub fn kl_best_of(n: usize) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let n = n as f64;
    n.ln() - (n - 1.0) / n
}

/// Index of the highest score among the first `n` (the first of equal ones; NaN scores are
/// never picked). `None` when there is no number among them.
pub fn best_of(scores: &[f64], n: usize) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &s) in scores.iter().enumerate().take(n) {
        match best {
            _ if s.is_nan() => {}
            Some(b) if s <= scores[b] => {}
            _ => best = Some(i),
        }
    }
    best
}

/// The n measured: 1, 2, 4, … up to `n_max` (and `n_max` itself when it is not a power of two).
pub fn sizes(n_max: usize) -> Vec<usize> {
    let mut out: Vec<usize> = std::iter::successors(Some(1usize), |&n| n.checked_mul(2))
        .take_while(|&n| n <= n_max)
        .collect();
    if n_max > 0 && out.last() != Some(&n_max) {
        out.push(n_max);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_by_hand() {
        assert_eq!(kl_best_of(1), 0.0);
        // ln 2 − 1/2 = 0.693147 − 0.5
        assert!((kl_best_of(2) - 0.193_147_18).abs() < 1e-8);
        // ln 4 − 3/4 = 1.386294 − 0.75
        assert!((kl_best_of(4) - 0.636_294_36).abs() < 1e-8);
        // ln 64 − 63/64 = 4.158883 − 0.984375
        assert!((kl_best_of(64) - 3.174_508_08).abs() < 1e-8);
    }

    #[test]
    fn picks_the_first_highest_of_the_first_n() {
        let s = [0.1, 0.7, f64::NAN, 0.7, 0.9];
        assert_eq!(best_of(&s, 1), Some(0));
        assert_eq!(best_of(&s, 2), Some(1));
        assert_eq!(
            best_of(&s, 4),
            Some(1),
            "ties keep the first, NaN never wins"
        );
        assert_eq!(best_of(&s, 5), Some(4));
        assert_eq!(best_of(&s, 99), Some(4));
        assert_eq!(best_of(&[f64::NAN, 0.2], 2), Some(1));
        assert_eq!(best_of(&[], 3), None);
        assert_eq!(best_of(&[f64::NAN], 1), None);
    }

    #[test]
    fn sizes_double_up_to_the_largest() {
        assert_eq!(sizes(64), [1, 2, 4, 8, 16, 32, 64]);
        assert_eq!(sizes(6), [1, 2, 4, 6]);
        assert_eq!(sizes(1), [1]);
        assert!(sizes(0).is_empty());
    }
}
