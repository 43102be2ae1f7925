//! Hand-sized checks of the PPO math in `rlhf::rl`. Every expected number is derived by
//! hand in a comment and cross-checked with the quoted python3 expression.

use rlhf::rl::{
    clip_reward, entropy_from_logits, gae, kl_penalty, mean_std, missing_eos_penalty,
    per_token_rewards, ppo_clip_stats, ppo_policy_loss, ppo_policy_loss_grad, ppo_value_loss,
    whiten, KlController,
};

use std::f32::consts::LN_2;

const TOL: f32 = 1e-5;

fn assert_close(got: f32, want: f32, tol: f32, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (tol {tol})"
    );
}

fn assert_all_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert_close(g, w, tol, &format!("{what}[{i}]"));
    }
}

#[test]
fn kl_penalty_and_rewards() {
    // logp_policy − logp_ref = [-1.0+1.2, -0.5+0.5, -2.0+1.5] = [0.2, 0.0, -0.5]
    // penalty = −0.1·[0.2, 0.0, −0.5] = [−0.02, 0.0, 0.05]
    // python3 -c "print([-0.1*(p-r) for p,r in zip([-1.0,-0.5,-2.0],[-1.2,-0.5,-1.5])])"
    //   -> [-0.02, -0.0, 0.05]
    let pol = [-1.0, -0.5, -2.0];
    let refp = [-1.2, -0.5, -1.5];
    assert_all_close(
        &kl_penalty(&pol, &refp, 0.1),
        &[-0.02, 0.0, 0.05],
        TOL,
        "kl",
    );
    // score 2.0 lands on the last token only: [−0.02, 0.0, 0.05 + 2.0 = 2.05]
    let r = per_token_rewards(2.0, &pol, &refp, 0.1);
    assert_all_close(&r, &[-0.02, 0.0, 2.05], TOL, "rewards");
    assert!(per_token_rewards(2.0, &[], &[], 0.1).is_empty());
    // beta = 0 leaves only the score.
    assert_all_close(
        &per_token_rewards(1.5, &pol, &refp, 0.0),
        &[0.0, 0.0, 1.5],
        TOL,
        "beta0",
    );
}

#[test]
fn clip_reward_cases() {
    assert_eq!(clip_reward(5.0, Some(3.0)), 3.0);
    assert_eq!(clip_reward(-5.0, Some(3.0)), -3.0);
    assert_eq!(clip_reward(1.25, Some(3.0)), 1.25);
    assert_eq!(clip_reward(-7.5, None), -7.5);
}

#[test]
fn missing_eos_penalty_cases() {
    // a cut-off response loses the penalty; one that ended, or no penalty set, keeps its score
    assert_eq!(missing_eos_penalty(1.5, false, Some(2.0)), -0.5);
    assert_eq!(missing_eos_penalty(1.5, true, Some(2.0)), 1.5);
    assert_eq!(missing_eos_penalty(1.5, false, None), 1.5);
    assert_eq!(missing_eos_penalty(-1.0, false, Some(0.0)), -1.0);
}

#[test]
fn whiten_one_to_four() {
    // mean = 10/4 = 2.5; deviations [−1.5, −0.5, 0.5, 1.5]; squares sum = 2.25+0.25+0.25+2.25 = 5
    // unbiased var = 5/3 = 1.6667, std = sqrt(5/3) = 1.2909944
    // whitened = dev / sqrt(5/3 + 1e-8) = [−1.1618950, −0.3872983, 0.3872983, 1.1618950]
    // no shift: + 2.5 -> [1.3381050, 2.1127017, 2.8872983, 3.6618950]
    // python3 -c "import math;xs=[1,2,3,4];m=sum(xs)/4;v=sum((x-m)**2 for x in xs)/3;
    //   print([(x-m)/math.sqrt(v+1e-8) for x in xs],[(x-m)/math.sqrt(v+1e-8)+m for x in xs])"
    let xs = [1.0, 2.0, 3.0, 4.0];
    let (m, s) = mean_std(&xs);
    assert_close(m, 2.5, TOL, "mean");
    assert_close(s, 1.290_994_4, TOL, "std");
    let w = whiten(&xs, true);
    assert_all_close(
        &w,
        &[-1.161_895, -0.387_298_3, 0.387_298_3, 1.161_895],
        TOL,
        "w",
    );
    let w2 = whiten(&xs, false);
    assert_all_close(
        &w2,
        &[1.338_105, 2.112_701_7, 2.887_298_3, 3.661_895],
        TOL,
        "w2",
    );
    // Property: whitened output has mean 0 and unbiased std 1.
    let (wm, ws) = mean_std(&whiten(&[0.3, -2.0, 7.5, 1.0, 4.0], true));
    assert_close(wm, 0.0, TOL, "whitened mean");
    assert_close(ws, 1.0, TOL, "whitened std");
}

#[test]
fn mean_std_edge_cases() {
    assert_eq!(mean_std(&[]), (0.0, 0.0));
    assert_eq!(mean_std(&[3.0]), (3.0, 0.0));
    assert_all_close(&whiten(&[3.0], true), &[0.0], TOL, "single");
}

// Shared by both GAE tests: rewards r = [0.1, −0.2, 1.0], values V = [0.5, 0.3, 0.4].
// python3 -c "
// def gae(r,v,g,l):
//   a=[0]*len(r);x=0
//   for t in reversed(range(len(r))):
//     nv=v[t+1] if t+1<len(r) else 0; x=r[t]+g*nv-v[t]+g*l*x; a[t]=x
//   return a,[ai+vi for ai,vi in zip(a,v)]
// print(gae([0.1,-0.2,1.0],[0.5,0.3,0.4],1.0,0.95))
// print(gae([0.1,-0.2,1.0],[0.5,0.3,0.4],0.9,1.0))"
//   -> ([0.3465, 0.47, 0.6], [0.8465, 0.77, 1.0])
//   -> ([0.23, 0.40, 0.6], [0.73, 0.70, 1.0])
const R: [f32; 3] = [0.1, -0.2, 1.0];
const V: [f32; 3] = [0.5, 0.3, 0.4];

#[test]
fn gae_gamma1_lambda095() {
    // t=2: δ = 1.0 + 1·0 − 0.4 = 0.6;            A2 = 0.6
    // t=1: δ = −0.2 + 0.4 − 0.3 = −0.1;          A1 = −0.1 + 0.95·0.6 = 0.47
    // t=0: δ = 0.1 + 0.3 − 0.5 = −0.1;           A0 = −0.1 + 0.95·0.47 = 0.3465
    // returns = A + V = [0.8465, 0.77, 1.0]
    let (a, ret) = gae(&R, &V, 1.0, 0.95);
    assert_all_close(&a, &[0.3465, 0.47, 0.6], TOL, "adv");
    assert_all_close(&ret, &[0.8465, 0.77, 1.0], TOL, "ret");
}

#[test]
fn gae_gamma09_lambda1() {
    // t=2: δ = 1.0 − 0.4 = 0.6;                  A2 = 0.6
    // t=1: δ = −0.2 + 0.9·0.4 − 0.3 = −0.14;     A1 = −0.14 + 0.9·0.6 = 0.40
    // t=0: δ = 0.1 + 0.9·0.3 − 0.5 = −0.13;      A0 = −0.13 + 0.9·0.40 = 0.23
    // returns = [0.73, 0.70, 1.0] = discounted MC returns: 1.0; −0.2+0.9·1 = 0.7;
    //   0.1+0.9·0.7 = 0.73
    let (a, ret) = gae(&R, &V, 0.9, 1.0);
    assert_all_close(&a, &[0.23, 0.40, 0.6], TOL, "adv");
    assert_all_close(&ret, &[0.73, 0.70, 1.0], TOL, "ret");
    // λ = 0: advantages are the TD errors [−0.13, −0.14, 0.6].
    let (a0, _) = gae(&R, &V, 0.9, 0.0);
    assert_all_close(&a0, &[-0.13, -0.14, 0.6], TOL, "td");
}

/// Four tokens with ratios [1.5, 0.5, 1.1, 1.5] and advantages [1, −2, 0.5, −1], ε = 0.2.
fn policy_case() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let old = vec![-1.0f32, -2.0, -0.5, -1.2];
    let ratios = [1.5f32, 0.5, 1.1, 1.5];
    let new = old.iter().zip(ratios).map(|(o, r)| o + r.ln()).collect();
    (new, old, vec![1.0, -2.0, 0.5, -1.0])
}

#[test]
fn policy_loss_with_clipping() {
    // tok0: ρ=1.5, A=+1:  −A·ρ = −1.5, −A·clip = −1.2 -> max −1.2  (clipped, ρ > 1+ε, A > 0)
    // tok1: ρ=0.5, A=−2:  −A·ρ =  1.0, −A·clip =  1.6 -> max  1.6  (clipped, ρ < 1−ε, A < 0)
    // tok2: ρ=1.1, A=0.5: −0.55 both               -> −0.55 (inside the trust region)
    // tok3: ρ=1.5, A=−1:  1.5 vs 1.2               ->  1.5  (unclipped: pessimistic side)
    // loss = (−1.2 + 1.6 − 0.55 + 1.5)/4 = 1.35/4 = 0.3375; clip_frac = 2/4 = 0.5
    // approx_kl = 0.5·mean(ln²ρ) = 0.5·(0.16440+0.48045+0.00908+0.16440)/4 = 0.1022926
    // python3 -c "import math;r=[1.5,0.5,1.1,1.5];A=[1,-2,0.5,-1];c=lambda x:min(max(x,0.8),1.2);
    //   t=[max(-a*x,-a*c(x)) for a,x in zip(A,r)];
    //   print(sum(t)/4,sum(-a*c(x)>-a*x for a,x in zip(A,r))/4,
    //   0.5*sum(math.log(x)**2 for x in r)/4)"  -> 0.3375 0.5 0.10229261900985812
    let (new, old, adv) = policy_case();
    let out = ppo_policy_loss(&new, &old, &adv, 0.2);
    assert_close(out.loss, 0.3375, TOL, "loss");
    assert_close(out.clip_frac, 0.5, TOL, "clip_frac");
    assert_close(out.approx_kl, 0.102_292_62, TOL, "approx_kl");
    // the diagnostics alone, as a training step computes them beside the tensors' loss
    let diag = ppo_clip_stats(&new, &old, &adv, 0.2);
    assert_close(diag.clip_frac, 0.5, TOL, "clip_stats clip_frac");
    assert_close(diag.approx_kl, 0.102_292_62, TOL, "clip_stats approx_kl");
    // ρ = 1 everywhere: loss = −mean(A), no clipping, zero KL.
    let same = ppo_policy_loss(&old, &old, &adv, 0.2);
    assert_close(
        same.loss,
        -(1.0 - 2.0 + 0.5 - 1.0) / 4.0,
        TOL,
        "ratio1 loss",
    );
    assert_eq!((same.clip_frac, same.approx_kl), (0.0, 0.0));
}

#[test]
fn policy_loss_grad_by_hand() {
    // Clipped tokens 0, 1 have zero gradient; unclipped: −A·ρ/N.
    // tok2: −0.5·1.1/4 = −0.1375; tok3: −(−1)·1.5/4 = 0.375
    let (new, old, adv) = policy_case();
    let g = ppo_policy_loss_grad(&new, &old, &adv, 0.2);
    assert_all_close(&g, &[0.0, 0.0, -0.1375, 0.375], TOL, "grad");
}

/// Central finite difference of the policy loss w.r.t. `new[i]`.
fn fd_grad(new: &[f32], old: &[f32], adv: &[f32], i: usize, h: f32) -> f32 {
    let (mut p, mut m) = (new.to_vec(), new.to_vec());
    p[i] += h;
    m[i] -= h;
    let lp = ppo_policy_loss(&p, old, adv, 0.2).loss;
    let lm = ppo_policy_loss(&m, old, adv, 0.2).loss;
    (lp - lm) / (p[i] - m[i])
}

#[test]
fn policy_loss_grad_matches_finite_differences() {
    let h = 1e-3;
    let (new, old, adv) = policy_case();
    let g = ppo_policy_loss_grad(&new, &old, &adv, 0.2);
    for (i, &gi) in g.iter().enumerate() {
        assert_close(gi, fd_grad(&new, &old, &adv, i, h), 1e-4, "fd");
    }
    // A grid of ratios / advantages, skipping points within 5h of a clip kink.
    let mut new2 = Vec::new();
    let mut old2 = Vec::new();
    let mut adv2 = Vec::new();
    for &r in &[0.6f32, 0.9, 1.0, 1.15, 1.3, 2.0] {
        for &a in &[-1.7f32, -0.3, 0.4, 2.5] {
            let lr = r.ln();
            if (lr - 0.8f32.ln()).abs() < 5.0 * h || (lr - 1.2f32.ln()).abs() < 5.0 * h {
                continue;
            }
            old2.push(-1.3);
            new2.push(-1.3 + lr);
            adv2.push(a);
        }
    }
    let g2 = ppo_policy_loss_grad(&new2, &old2, &adv2, 0.2);
    // The grid must exercise both branches (clipped => 0, unclipped => nonzero).
    assert!(g2.contains(&0.0) && g2.iter().any(|&x| x != 0.0));
    for (i, &gi) in g2.iter().enumerate() {
        assert_close(gi, fd_grad(&new2, &old2, &adv2, i, h), 1e-4, "fd grid");
    }
}

#[test]
fn value_loss_without_clipping() {
    // |v − v_old| = 0.1 ≤ 0.2 for both tokens, so both terms are equal:
    // (0.6 − 1.0)² = 0.16, (0.9 − 0.0)² = 0.81; loss = 0.5·(0.16 + 0.81)/2 = 0.2425
    // python3 -c "c=lambda v,o:min(max(v,o-0.2),o+0.2);print(0.5*sum(max((v-r)**2,(c(v,o)-r)**2)
    //   for v,o,r in zip([0.6,0.9],[0.5,1.0],[1.0,0.0]))/2)"  -> 0.2425
    let out = ppo_value_loss(&[0.6, 0.9], &[0.5, 1.0], &[1.0, 0.0], 0.2);
    assert_close(out.loss, 0.2425, TOL, "loss");
    assert_eq!(out.clip_frac, 0.0);
}

#[test]
fn value_loss_with_clipping() {
    // tok0: v=1.0, v_old=0.5 -> clip 0.7;  (1.0−1)² = 0,    (0.7−1)² = 0.09 -> 0.09 (clipped)
    // tok1: v=0.5, v_old=1.0 -> clip 0.8;  (0.5−1)² = 0.25, (0.8−1)² = 0.04 -> 0.25
    // tok2: v=0.1, v_old=0.0 -> in range;  0.01 both                       -> 0.01
    // loss = 0.5·(0.09 + 0.25 + 0.01)/3 = 0.0583333; clip_frac = 1/3
    // python3 -c "c=lambda v,o:min(max(v,o-0.2),o+0.2);print(0.5*sum(max((v-r)**2,(c(v,o)-r)**2)
    //   for v,o,r in zip([1.0,0.5,0.1],[0.5,1.0,0.0],[1.0,1.0,0.0]))/3)"  -> 0.05833333333333334
    let out = ppo_value_loss(&[1.0, 0.5, 0.1], &[0.5, 1.0, 0.0], &[1.0, 1.0, 0.0], 0.2);
    assert_close(out.loss, 0.058_333_33, TOL, "loss");
    assert_close(out.clip_frac, 1.0 / 3.0, TOL, "clip_frac");
}

#[test]
fn entropy_cases() {
    // Uniform over 5: ln 5 = 1.6094379 (python3 -c "import math;print(math.log(5))")
    assert_close(entropy_from_logits(&[0.7; 5]), 1.609_438, TOL, "uniform5");
    // Huge equal logits must not overflow: ln 2 = 0.6931472.
    assert_close(entropy_from_logits(&[1000.0, 1000.0]), LN_2, TOL, "big");
    // logits [0, ln2, ln3] -> p = [1/6, 2/6, 3/6];
    // H = −(1/6·ln(1/6) + 1/3·ln(1/3) + 1/2·ln(1/2)) = 0.298627 + 0.366204 + 0.346574 = 1.0114043
    // python3 -c "import math;p=[1/6,2/6,3/6];print(-sum(q*math.log(q) for q in p))"
    //   -> 1.0114042647073518
    let l = [0.0, 2.0f32.ln(), 3.0f32.ln()];
    assert_close(entropy_from_logits(&l), 1.011_404_3, TOL, "1-2-3");
    // A −∞ (masked) logit contributes nothing: same as uniform over 2.
    let masked = entropy_from_logits(&[0.0, 0.0, f32::NEG_INFINITY]);
    assert_close(masked, LN_2, TOL, "masked");
    // One-hot-ish: entropy ~ 0.
    assert_close(entropy_from_logits(&[0.0, 200.0]), 0.0, TOL, "peaked");
}

#[test]
fn adaptive_kl_controller_three_updates() {
    // init 0.1, target 6, horizon 10000, n_steps 256 -> n/h = 0.0256
    // 1) KL 8:   8/6 − 1 = 0.333 -> clip 0.2;  mult = 1.00512; β = 0.100512
    // 2) KL 3:   3/6 − 1 = −0.5 -> clip −0.2;  mult = 0.99488; β = 0.100512·0.99488 = 0.0999973786
    // 3) KL 6.6: 6.6/6 − 1 = 0.1 (no clip);    mult = 1.00256; β = 0.1002533718
    // python3 -c "
    // v=0.1
    // for kl in (8.0,3.0,6.6):
    //   pe=max(-0.2,min(0.2,kl/6-1)); v*=1+pe*256/10000; print(v)"
    //   -> 0.100512, 0.09999737856, 0.10025337184911359
    let mut c = KlController::adaptive(0.1, 6.0, 10_000);
    let want = [0.100_512, 0.099_997_38, 0.100_253_37];
    for (kl, w) in [8.0, 3.0, 6.6].into_iter().zip(want) {
        c.update(kl, 256);
        assert_close(c.value(), w, 1e-7, "beta");
    }
    assert!(matches!(c, KlController::Adaptive { .. }));
    // At target the coefficient is unchanged.
    let before = c.value();
    c.update(6.0, 256);
    assert_close(c.value(), before, 1e-9, "at target");
}

#[test]
fn fixed_kl_controller_ignores_kl() {
    let mut c = KlController::fixed(0.05);
    for kl in [100.0, 0.0, 6.0] {
        c.update(kl, 256);
    }
    assert_eq!(c.value(), 0.05);
    assert!(matches!(c, KlController::Fixed { .. }));
    assert_eq!(c.clone(), KlController::fixed(0.05));
}
