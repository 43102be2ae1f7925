//! Mean / standard deviation and whitening (standardisation) of a flat batch.
//!
//! Matches TRL's `masked_mean` / `masked_var(unbiased=True)` / `masked_whiten`: the
//! variance is the **unbiased** (Bessel-corrected, divide by `n − 1`) sample variance
//! and whitening divides by `sqrt(var + 1e-8)`.

/// Epsilon added to the variance before the square root in [`whiten`] (TRL uses `1e-8`).
pub const WHITEN_EPS: f32 = 1e-8;

/// Mean and **unbiased** standard deviation (`sqrt(Σ(x−μ)² / (n−1))`) of `xs`.
///
/// Accumulates in `f64`. Edge cases: empty input gives `(0.0, 0.0)`; a single element
/// gives `(x, 0.0)` (the unbiased variance is undefined there; TRL raises, we return 0
/// so that whitening maps it to 0).
pub fn mean_std(xs: &[f32]) -> (f32, f32) {
    let (mean, var) = mean_var(xs);
    (mean as f32, var.sqrt() as f32)
}

fn mean_var(xs: &[f32]) -> (f64, f64) {
    let n = xs.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = xs.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, 0.0);
    }
    let ss: f64 = xs.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum();
    (mean, ss / (n - 1) as f64)
}

/// Whiten `xs`: `(x − μ) / sqrt(σ² + 1e-8)` with the unbiased variance `σ²`.
///
/// * `xs`: flat `[N]` batch (e.g. all response-token advantages of a PPO batch).
/// * `shift_mean`: if `true` the output has mean 0; if `false` the mean is added back
///   (`(x − μ)/σ + μ`), i.e. only the scale is normalised. TRL whitens advantages with
///   `shift_mean = true` and rewards (when enabled) with `shift_mean = false`.
///
/// Returns `[N]`. With `shift_mean = true` and `N ≥ 2` the result has mean 0 and
/// unbiased variance ≈ 1. Normalising advantages keeps the policy-gradient step size
/// independent of the reward scale.
pub fn whiten(xs: &[f32], shift_mean: bool) -> Vec<f32> {
    let (mean, var) = mean_var(xs);
    let inv_std = 1.0 / (var + f64::from(WHITEN_EPS)).sqrt();
    xs.iter()
        .map(|&x| {
            let w = (f64::from(x) - mean) * inv_std;
            (if shift_mean { w } else { w + mean }) as f32
        })
        .collect()
}
