//! Tests for the noisy Plackett–Luce ranker, its RNG and the pairwise
//! agreement measure the trainer reports.

use rlhf::labeler::bradley_terry::{noisy_rank, pairwise_agreement, sorted_rank, SplitMix64};

/// 20 evenly spaced scores over the compound range [-1, 1].
fn spread_scores() -> Vec<f64> {
    (0..20).map(|i| -1.0 + 2.0 * f64::from(i) / 19.0).collect()
}

/// Mean agreement between the exact sort and `draws` noisy rankings.
fn mean_agreement(temperature: f64, draws: usize, seed: u64) -> f64 {
    let scores = spread_scores();
    let exact = sorted_rank(&scores);
    let mut rng = SplitMix64::new(seed);
    let total: f64 = (0..draws)
        .map(|_| pairwise_agreement(&exact, &noisy_rank(&scores, temperature, &mut rng)))
        .sum();
    total / draws as f64
}

#[test]
fn splitmix64_matches_reference_stream() {
    // First output of the reference C implementation seeded with 0.
    assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    let mut rng = SplitMix64::new(7);
    assert!((0..1000)
        .map(|_| rng.next_f64())
        .all(|x| (0.0..1.0).contains(&x)));
}

#[test]
fn zero_temperature_is_the_exact_sort() {
    let scores = [0.1, -0.5, 0.9, 0.1, 0.3];
    let mut rng = SplitMix64::new(1);
    // Ties (indices 0 and 3) keep the earlier index first.
    assert_eq!(noisy_rank(&scores, 0.0, &mut rng), vec![2, 4, 0, 3, 1]);
    assert_eq!(noisy_rank(&scores, -1.0, &mut rng), vec![2, 4, 0, 3, 1]);
    assert_eq!(noisy_rank(&scores, f64::NAN, &mut rng), vec![2, 4, 0, 3, 1]);
    assert_eq!(mean_agreement(0.0, 10, 3), 1.0);
}

#[test]
fn noisy_rank_is_a_seeded_permutation() {
    let scores = spread_scores();
    let a = noisy_rank(&scores, 1.0, &mut SplitMix64::new(9));
    let b = noisy_rank(&scores, 1.0, &mut SplitMix64::new(9));
    assert_eq!(a, b);
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..scores.len()).collect::<Vec<_>>());
    assert!(noisy_rank(&[], 1.0, &mut SplitMix64::new(9)).is_empty());
}

#[test]
fn large_temperature_is_noisy_but_better_than_chance() {
    // Measured with seed 42 over 500 draws: T = 1 gives ~0.67.
    let agreement = mean_agreement(1.0, 500, 42);
    assert!(agreement > 0.6 && agreement < 0.75, "{agreement}");
    // T = ∞ is a uniform shuffle: ~0.5.
    let chance = mean_agreement(f64::INFINITY, 500, 42);
    assert!((chance - 0.5).abs() < 0.02, "{chance}");
}

#[test]
fn small_temperature_is_nearly_exact() {
    // Neighbouring scores differ by 2/19 ≈ 0.105; at T = 0.01 a swap has
    // odds of about exp(-10.5) ≈ 3e-5.
    let agreement = mean_agreement(0.01, 200, 42);
    assert!(agreement > 0.99, "{agreement}");
}

#[test]
fn huge_scores_do_not_overflow() {
    let scores = [1e300, -1e300, 5e299];
    let rank = noisy_rank(&scores, 1.0, &mut SplitMix64::new(5));
    assert_eq!(rank, vec![0, 2, 1]);
}

#[test]
fn pairwise_agreement_counts_concordant_pairs() {
    assert_eq!(pairwise_agreement(&[0, 1, 2, 3], &[0, 1, 2, 3]), 1.0);
    assert_eq!(pairwise_agreement(&[0, 1, 2, 3], &[3, 2, 1, 0]), 0.0);
    // One adjacent swap among 3 items: 2 of 3 pairs agree.
    let a = pairwise_agreement(&[0, 1, 2], &[1, 0, 2]);
    assert!((a - 2.0 / 3.0).abs() < 1e-12, "{a}");
    // Only items in both rankings count; one pair (0, 2) is left.
    assert_eq!(pairwise_agreement(&[0, 1, 2], &[2, 0]), 0.0);
    assert_eq!(pairwise_agreement(&[], &[]), 1.0);
}
