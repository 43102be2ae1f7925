//! Direct Preference Optimization (Rafailov et al. 2023) as pure math on host slices: the loss
//! of one preference pair, its gradient, and the statistics of K-wise rankings under a policy and
//! a reference. The tensor loss (`stages::dpo::loss`) is tested against these.
//!
//! For a prompt x with a winner y_w ranked above a loser y_l, the log-ratio margin is
//! `m = (log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))`, each log π the sum
//! over the response's tokens (its closing `<|endoftext|>` included), and the pair's loss is
//! `−log σ(β·m) = softplus(−β·m)`. `β·(log π(y) − log π_ref(y))` is the response's *implicit
//! reward*; a K-wise ranking contributes its C(K,2) pairs, averaged, and prompts are averaged —
//! the reward model's ranking loss with the implicit reward in place of r_θ.
//!
//! Conventions: log-probabilities come prompt-major, best first within a prompt (how rankings
//! are stored); sums are accumulated in `f64`.

/// `softplus(x) = ln(1 + eˣ)`, stable for |x| large (no overflow, no cancellation).
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `σ(x) = 1 / (1 + e⁻ˣ)`, stable for x very negative.
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The DPO loss of one pair, `−log σ(β·margin)`, with `margin` the log-ratio margin (module
/// docs; nats). Margin 0 (policy = reference) gives ln 2.
pub fn dpo_pair_loss(margin: f64, beta: f64) -> f64 {
    softplus(-beta * margin)
}

/// `d dpo_pair_loss / d margin = −β·σ(−β·margin)`: the winner's log-probability gets this
/// gradient, the loser's its negation (each times the pair's weight in the mean).
pub fn dpo_pair_loss_grad(margin: f64, beta: f64) -> f64 {
    -beta * sigmoid(-beta * margin)
}

/// Implicit rewards `β·(log π(y) − log π_ref(y))`, one per response.
pub fn implicit_rewards(logp: &[f32], logp_ref: &[f32], beta: f64) -> Vec<f64> {
    debug_assert_eq!(logp.len(), logp_ref.len());
    logp.iter()
        .zip(logp_ref)
        .map(|(&p, &r)| beta * (f64::from(p) - f64::from(r)))
        .collect()
}

/// DPO statistics of a set of rankings.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DpoStats {
    /// Mean over prompts of the mean pair loss over the prompt's C(K,2) pairs.
    pub loss: f64,
    /// Fraction of pairs whose implicit reward margin is > 0 (a tie, as at the start when the
    /// policy is the reference, counts as wrong).
    pub accuracy: f64,
    /// Mean implicit reward margin `β·m` over pairs.
    pub margin: f64,
    /// Mean implicit reward of each prompt's best response, and of its worst: DPO can raise the
    /// margin while lowering both (Rafailov et al. §5; Pal et al. 2024), which these show.
    pub reward_best: f64,
    pub reward_worst: f64,
}

/// DPO statistics of rankings with `ks[p]` responses each (Σ ks = logp.len()).
pub fn dpo_stats(logp: &[f32], logp_ref: &[f32], ks: &[usize], beta: f64) -> DpoStats {
    let r = implicit_rewards(logp, logp_ref, beta);
    let (mut loss, mut correct, mut margin, mut pairs) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let (mut best, mut worst, mut off) = (0.0f64, 0.0f64, 0);
    for &k in ks {
        let g = &r[off..off + k];
        let mut l = 0.0;
        for i in 0..k {
            for j in i + 1..k {
                // rewards are β·logratio, so their difference is β·m: the pair loss at β = 1
                let d = g[i] - g[j];
                l += dpo_pair_loss(d, 1.0);
                correct += f64::from(u8::from(d > 0.0));
                margin += d;
                pairs += 1.0;
            }
        }
        loss += l / (k * (k - 1) / 2).max(1) as f64;
        best += g.first().copied().unwrap_or(0.0);
        worst += g.last().copied().unwrap_or(0.0);
        off += k;
    }
    let (np, pairs) = (ks.len().max(1) as f64, pairs.max(1.0));
    DpoStats {
        loss: loss / np,
        accuracy: correct / pairs,
        margin: margin / pairs,
        reward_best: best / np,
        reward_worst: worst / np,
    }
}

/// Gradient of [`dpo_stats`]'s loss w.r.t. each response's policy log-probability: the pair
/// gradients of [`dpo_pair_loss_grad`], each weighted by 1/(P·C(K,2)).
pub fn dpo_loss_grad(logp: &[f32], logp_ref: &[f32], ks: &[usize], beta: f64) -> Vec<f64> {
    let lr: Vec<f64> = implicit_rewards(logp, logp_ref, 1.0); // log-ratios
    let mut g = vec![0.0; lr.len()];
    let np = ks.len().max(1) as f64;
    let mut off = 0;
    for &k in ks {
        let w = 1.0 / (np * (k * (k - 1) / 2).max(1) as f64);
        for i in off..off + k {
            for j in i + 1..off + k {
                let d = w * dpo_pair_loss_grad(lr[i] - lr[j], beta);
                g[i] += d;
                g[j] -= d;
            }
        }
        off += k;
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    const LN2: f64 = std::f64::consts::LN_2; // 0.6931471805599453

    #[test]
    fn pair_loss_hand_values() {
        // margin 0: −log σ(0) = −log ½ = ln 2, whatever β
        assert!((dpo_pair_loss(0.0, 0.1) - LN2).abs() < 1e-15);
        assert!((dpo_pair_loss(0.0, 5.0) - LN2).abs() < 1e-15);
        // β = 0.1, margin 10 → β·m = 1: ln(1 + e⁻¹) = 0.31326168751822286
        // python3 -c "import math;print(math.log1p(math.exp(-1)))"
        assert!((dpo_pair_loss(10.0, 0.1) - 0.313_261_687_518_222_86).abs() < 1e-15);
        // margin −10 → ln(1 + e) = 1.3132616875182228
        // (= 1 + the above: softplus(x) − softplus(−x) = x)
        assert!((dpo_pair_loss(-10.0, 0.1) - 1.313_261_687_518_222_8).abs() < 1e-15);
        // far in the tails: no overflow, no NaN (β·m = ±1e4)
        assert_eq!(dpo_pair_loss(1e5, 0.1), 0.0);
        assert!((dpo_pair_loss(-1e5, 0.1) - 1e4).abs() < 1e-9);
    }

    #[test]
    fn pair_grad_hand_values_and_finite_differences() {
        // margin 0: −β·σ(0) = −β/2
        assert!((dpo_pair_loss_grad(0.0, 0.1) + 0.05).abs() < 1e-15);
        // β = 0.1, margin 10: −0.1·σ(−1) = −0.1 · 0.2689414213699951 = −0.02689414213699951
        assert!((dpo_pair_loss_grad(10.0, 0.1) + 0.026_894_142_136_999_51).abs() < 1e-15);
        assert_eq!(dpo_pair_loss_grad(-1e5, 0.1), -0.1); // saturated: σ(1e4) = 1
        for m in [-30.0, -2.0, 0.3, 7.0] {
            let h = 1e-6;
            let fd = (dpo_pair_loss(m + h, 0.5) - dpo_pair_loss(m - h, 0.5)) / (2.0 * h);
            assert!((fd - dpo_pair_loss_grad(m, 0.5)).abs() < 1e-8, "{m}: {fd}");
        }
    }

    #[test]
    fn stats_of_two_prompts_by_hand() {
        // β = 0.5. Prompt 1, K = 3: log-ratios (policy − reference) [2, 0, −2] → rewards
        //   [1, 0, −1]; pairs (1−0, 1−(−1), 0−(−1)) = (1, 2, 1): losses ln(1+e⁻¹) = 0.3132617,
        //   ln(1+e⁻²) = 0.1269280; mean (2·0.3132617 + 0.1269280)/3 = 0.2511505; all 3 right.
        // Prompt 2, K = 2: log-ratios [0, 2] → rewards [0, 1]: pair 0 − 1 = −1, loss ln(1+e) =
        //   1.3132617, wrong.
        // loss (0.2511505 + 1.3132617)/2 = 0.7822061; accuracy 3/4; margin (1+2+1−1)/4 = 0.75;
        // best rewards (1 + 0)/2 = 0.5, worst (−1 + 1)/2 = 0.
        // python3 -c "import math;f=lambda d:math.log1p(math.exp(-d));
        //   print(((2*f(1)+f(2))/3+f(-1))/2)"
        let logp = [-3.0, -5.0, -7.0, -4.0, -2.0];
        let logp_ref = [-5.0, -5.0, -5.0, -4.0, -4.0];
        let s = dpo_stats(&logp, &logp_ref, &[3, 2], 0.5);
        assert!((s.loss - 0.782_206_1).abs() < 1e-7, "{s:?}");
        assert_eq!(s.accuracy, 0.75);
        assert!((s.margin - 0.75).abs() < 1e-12);
        assert!((s.reward_best - 0.5).abs() < 1e-12 && s.reward_worst.abs() < 1e-12);
        // policy = reference: every margin 0, loss ln 2, no pair right
        let z = dpo_stats(&logp, &logp, &[3, 2], 0.5);
        assert!((z.loss - LN2).abs() < 1e-15 && z.accuracy == 0.0 && z.margin == 0.0);
    }

    #[test]
    fn loss_grad_matches_finite_differences() {
        let logp = [-3.0f32, -5.5, -7.0, -4.0, -2.0];
        let logp_ref = [-5.0f32, -5.0, -5.0, -4.0, -4.5];
        let (ks, beta) = ([3, 2], 0.7);
        let g = dpo_loss_grad(&logp, &logp_ref, &ks, beta);
        for i in 0..logp.len() {
            let h = 1e-2f32; // f32 inputs: a wide step, the loss is smooth
            let (mut up, mut dn) = (logp, logp);
            up[i] += h;
            dn[i] -= h;
            let fd = (dpo_stats(&up, &logp_ref, &ks, beta).loss
                - dpo_stats(&dn, &logp_ref, &ks, beta).loss)
                / (2.0 * f64::from(h));
            assert!((fd - g[i]).abs() < 1e-5, "{i}: {fd} vs {}", g[i]);
        }
        // each prompt's gradients sum to 0 (only differences of log-ratios matter)
        assert!((g[..3].iter().sum::<f64>()).abs() < 1e-12);
        assert!((g[3] + g[4]).abs() < 1e-12);
    }
}
