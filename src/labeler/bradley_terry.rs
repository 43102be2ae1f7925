//! Noisy rankings from scores, for a simulated labeler that disagrees with
//! itself the way human labelers do.
//!
//! [`noisy_rank`] samples a ranking from the Plackett–Luce model (the
//! Bradley–Terry model extended to full rankings): the next-ranked item is
//! drawn from those remaining with probability ∝ `exp(score / T)`. `T = 0`
//! gives the exact sort; `T → ∞` gives a uniformly random order.
//! [`pairwise_agreement`] measures how far a noisy ranking strayed from the
//! noiseless one. Randomness comes from [`SplitMix64`], the project's seeded
//! generator (`crate::util::rng::Rng`), so the crate needs no `rand` dependency.

/// The project's seedable SplitMix64 generator (one `u64` of state, saved in checkpoints).
pub use crate::util::rng::Rng as SplitMix64;

/// Indices of `scores` sorted best (highest) first; ties keep the earlier
/// index first. NaN scores sort as by [`f64::total_cmp`].
pub fn sorted_rank(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// Samples a ranking (indices, best first) from the Plackett–Luce model with
/// weights `exp(score_i / temperature)`.
///
/// A temperature that is zero, negative or NaN gives the deterministic
/// [`sorted_rank`]; an infinite one a uniform shuffle. Weights are computed
/// relative to the best remaining score, so large scores cannot overflow.
pub fn noisy_rank(scores: &[f64], temperature: f64, rng: &mut SplitMix64) -> Vec<usize> {
    if temperature.is_nan() || temperature <= 0.0 {
        return sorted_rank(scores);
    }
    let mut remaining = sorted_rank(scores);
    let mut ranking = Vec::with_capacity(scores.len());
    let mut weights = Vec::with_capacity(scores.len());
    while !remaining.is_empty() {
        // `remaining` stays sorted, so its head holds the best score.
        let best = scores[remaining[0]];
        weights.clear();
        weights.extend(remaining.iter().map(|&i| {
            let w = ((scores[i] - best) / temperature).exp();
            if w.is_finite() {
                w
            } else {
                0.0
            }
        }));
        let total: f64 = weights.iter().sum();
        let pick = if total > 0.0 && total.is_finite() {
            let target = rng.next_f64() * total;
            let mut acc = 0.0;
            // Rounding may leave `target` just past the last cumulative sum;
            // fall back to the last item with positive weight.
            let mut chosen = weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
            for (k, &w) in weights.iter().enumerate() {
                acc += w;
                if target < acc && w > 0.0 {
                    chosen = k;
                    break;
                }
            }
            chosen
        } else {
            0
        };
        ranking.push(remaining.remove(pick));
    }
    ranking
}

/// Fraction of item pairs that rankings `a` and `b` (indices, best first)
/// order the same way.
///
/// Only items present in both rankings count; if an item repeats, its first
/// position is used. With fewer than two common items the rankings cannot
/// disagree and the result is 1.0.
pub fn pairwise_agreement(a: &[usize], b: &[usize]) -> f64 {
    let n = a.iter().chain(b).map(|&i| i + 1).max().unwrap_or(0);
    let positions = |ranking: &[usize]| {
        let mut pos = vec![None; n];
        for (rank, &item) in ranking.iter().enumerate() {
            pos[item].get_or_insert(rank);
        }
        pos
    };
    let (pa, pb) = (positions(a), positions(b));
    let common: Vec<(usize, usize)> = pa
        .iter()
        .zip(&pb)
        .filter_map(|(x, y)| Some(((*x)?, (*y)?)))
        .collect();
    let (mut agree, mut pairs) = (0u64, 0u64);
    for (k, &(xa, xb)) in common.iter().enumerate() {
        for &(ya, yb) in &common[k + 1..] {
            pairs += 1;
            if (xa < ya) == (xb < yb) {
                agree += 1;
            }
        }
    }
    if pairs == 0 {
        1.0
    } else {
        agree as f64 / pairs as f64
    }
}
