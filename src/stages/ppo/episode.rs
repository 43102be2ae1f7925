//! Episodes and the right-padded grid they are trained on.
//!
//! An episode is a prompt and the policy's response to it. Its *actions* are the response
//! tokens, plus `<|endoftext|>` when the policy chose to stop (stopping is a decision too; a
//! response cut at `max_new_tokens` has no closing action). For the model, the episode is the
//! sequence `s = prompt ++ actions`, fed as `x = s[..n-1]` with targets `y = s[1..]`, so action
//! `j` is predicted at position `P − 1 + j` (P = prompt length), where its log-probability and
//! the value `V(s_t)` of the state before it are read.

use crate::rl::{gae, leave_one_out, per_token_rewards, sequence_return, whiten};

/// One prompt, its response and everything PPO computes about it. Per-action vectors have one
/// entry per action.
#[derive(Debug, Clone, Default)]
pub struct Episode {
    /// Prompt tokens as fed to the policy (template applied, cut from the left to fit).
    pub prompt: Vec<u32>,
    /// Response tokens, then `<|endoftext|>` when the policy stopped by itself.
    pub actions: Vec<u32>,
    /// True when the last action is `<|endoftext|>`.
    pub ended: bool,
    /// log π_old(a_t | s_t) at rollout time.
    pub logp_old: Vec<f32>,
    /// log π_SFT(a_t | s_t) of the frozen reference.
    pub logp_ref: Vec<f32>,
    /// V_old(s_t) of the value model at rollout time.
    pub values: Vec<f32>,
    /// Reward-model score of `prompt + response` (normalisation bias included, not clipped).
    pub score: f32,
    /// Per-action rewards: `−β·(log π_old − log π_SFT)`, plus the (clipped) score on the last.
    pub rewards: Vec<f32>,
    /// GAE advantages (whitened across the batch).
    pub advantages: Vec<f32>,
    /// λ-returns, the value model's targets.
    pub returns: Vec<f32>,
}

impl Episode {
    /// Response tokens without the closing `<|endoftext|>`.
    pub fn response(&self) -> &[u32] {
        if self.ended {
            &self.actions[..self.actions.len() - 1]
        } else {
            &self.actions
        }
    }

    /// Sampled KL to the reference over this episode: Σ_t log π_old − log π_SFT (nats).
    pub fn kl(&self) -> f32 {
        self.logp_old
            .iter()
            .zip(&self.logp_ref)
            .map(|(p, r)| p - r)
            .sum()
    }
}

/// Fills `rewards`, `advantages` and `returns` of a rollout batch: per-token KL penalty with
/// coefficient `beta`, the score on the last action, GAE(γ, λ), then advantages whitened over
/// every action of the batch.
pub fn assign_rewards(eps: &mut [Episode], scores: &[f32], beta: f32, gamma: f32, lambda: f32) {
    for (e, &s) in eps.iter_mut().zip(scores) {
        e.rewards = per_token_rewards(s, &e.logp_old, &e.logp_ref, beta);
        let (adv, ret) = gae(&e.rewards, &e.values, gamma, lambda);
        e.advantages = adv;
        e.returns = ret;
    }
    let all: Vec<f32> = eps.iter().flat_map(|e| e.advantages.clone()).collect();
    let white = whiten(&all, true);
    let mut it = white.into_iter();
    for e in eps.iter_mut() {
        for a in e.advantages.iter_mut() {
            *a = it.next().unwrap_or(0.0);
        }
    }
}

/// RLOO's `advantages` for a rollout batch laid out as consecutive groups of `k` responses to
/// one prompt: each episode's return `score − β·KL` minus the mean return of the other `k − 1`
/// of its group, given to every one of its actions, then divided by the standard deviation of
/// the batch's advantages (PPO's are whitened too, so a learning rate means the same for
/// both). `rewards` get the per-token form of the same return (for the record); there is no
/// value model, so `returns` are 0.
pub fn assign_rloo(eps: &mut [Episode], scores: &[f32], beta: f32, k: usize) {
    let returns: Vec<f32> = eps
        .iter()
        .zip(scores)
        .map(|(e, &s)| sequence_return(s, &e.logp_old, &e.logp_ref, beta))
        .collect();
    let adv = whiten(&leave_one_out(&returns, k), true);
    for ((e, &s), a) in eps.iter_mut().zip(scores).zip(adv) {
        e.rewards = per_token_rewards(s, &e.logp_old, &e.logp_ref, beta);
        e.advantages = vec![a; e.actions.len()];
        e.returns = vec![0.0; e.actions.len()];
    }
}

/// A right-padded batch of episodes, row-major (B, T): inputs, targets and the action mask.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub b: usize,
    pub t: usize,
    /// Inputs `s[..n-1]`, padded with `pad`.
    pub x: Vec<i64>,
    /// Targets `s[1..]`, padded with `pad`.
    pub y: Vec<i64>,
    /// 1 where the target is an action, 0 on prompt and padding.
    pub mask: Vec<f32>,
    /// Grid column of each row's first action (P − 1).
    pub starts: Vec<usize>,
    /// Number of actions of each row.
    pub lens: Vec<usize>,
}

impl Grid {
    /// Lays out episodes (each with a non-empty prompt and at least one action).
    pub fn new(eps: &[&Episode], pad: u32) -> Self {
        let t = eps
            .iter()
            .map(|e| e.prompt.len() + e.actions.len() - 1)
            .max()
            .unwrap_or(1)
            .max(1);
        let b = eps.len();
        let mut g = Self {
            b,
            t,
            x: vec![pad as i64; b * t],
            y: vec![pad as i64; b * t],
            mask: vec![0.0; b * t],
            starts: Vec::with_capacity(b),
            lens: Vec::with_capacity(b),
        };
        for (r, e) in eps.iter().enumerate() {
            let s: Vec<u32> = e.prompt.iter().chain(&e.actions).copied().collect();
            for j in 0..s.len() - 1 {
                g.x[r * t + j] = s[j] as i64;
                g.y[r * t + j] = s[j + 1] as i64;
            }
            let start = e.prompt.len() - 1;
            for j in 0..e.actions.len() {
                g.mask[r * t + start + j] = 1.0;
            }
            g.starts.push(start);
            g.lens.push(e.actions.len());
        }
        g
    }

    /// Spreads one per-action vector per row onto the grid (0 elsewhere). → (B·T)
    pub fn spread<'a>(&self, rows: impl Iterator<Item = &'a [f32]>) -> Vec<f32> {
        let mut out = vec![0.0; self.b * self.t];
        for (r, v) in rows.enumerate() {
            let o = r * self.t + self.starts[r];
            out[o..o + v.len()].copy_from_slice(v);
        }
        out
    }

    /// The action positions of each row of a (B·T) grid of values.
    pub fn gather(&self, full: &[f32]) -> Vec<Vec<f32>> {
        (0..self.b)
            .map(|r| {
                let o = r * self.t + self.starts[r];
                full[o..o + self.lens[r]].to_vec()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(prompt: &[u32], actions: &[u32]) -> Episode {
        Episode {
            prompt: prompt.to_vec(),
            actions: actions.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn grid_aligns_actions_with_the_positions_that_predict_them() {
        let a = ep(&[1, 2, 3], &[4, 5]);
        let b = ep(&[6], &[7, 8, 9]);
        let g = Grid::new(&[&a, &b], 0);
        // a: s = 1 2 3 4 5 → x = 1 2 3 4, y = 2 3 4 5; actions 4, 5 at columns 2, 3
        // b: s = 6 7 8 9   → x = 6 7 8 0, y = 7 8 9 0; actions 7 8 9 at columns 0, 1, 2
        assert_eq!((g.b, g.t), (2, 4));
        assert_eq!(g.x, vec![1, 2, 3, 4, 6, 7, 8, 0]);
        assert_eq!(g.y, vec![2, 3, 4, 5, 7, 8, 9, 0]);
        assert_eq!(g.mask, vec![0., 0., 1., 1., 1., 1., 1., 0.]);
        let spread = g.spread([&[0.5f32, 0.6][..], &[1.0, 2.0, 3.0][..]].into_iter());
        assert_eq!(spread, vec![0., 0., 0.5, 0.6, 1., 2., 3., 0.]);
        assert_eq!(g.gather(&spread), vec![vec![0.5, 0.6], vec![1.0, 2.0, 3.0]]);
    }

    #[test]
    fn rewards_put_the_score_on_the_last_action_and_whiten_advantages() {
        let mut e = ep(&[1], &[2, 3]);
        e.logp_old = vec![-1.0, -2.0];
        e.logp_ref = vec![-1.5, -1.0];
        e.values = vec![0.0, 0.0];
        let mut f = e.clone();
        f.values = vec![1.0, 1.0];
        let mut eps = vec![e, f];
        assign_rewards(&mut eps, &[1.0, 1.0], 0.1, 1.0, 1.0);
        // r = −0.1·(0.5, −1.0) + (0, 1) = (−0.05, 1.1)
        assert!((eps[0].rewards[0] + 0.05).abs() < 1e-6);
        assert!((eps[0].rewards[1] - 1.1).abs() < 1e-6);
        // λ = γ = 1, V = 0: returns are reward-to-go (1.05, 1.1); with V = 1 the advantages
        // are returns − 1 = (0.05, 0.1) and the returns stay (1.05, 1.1).
        assert!((eps[0].returns[0] - 1.05).abs() < 1e-6);
        assert!((eps[1].returns[1] - 1.1).abs() < 1e-6);
        let adv: Vec<f32> = eps.iter().flat_map(|e| e.advantages.clone()).collect();
        let mean = adv.iter().sum::<f32>() / 4.0;
        assert!(
            mean.abs() < 1e-5,
            "whitened advantages have mean 0: {adv:?}"
        );
        // raw advantages (1.05, 1.1, 0.05, 0.1) keep their order after whitening
        assert!(adv[1] > adv[0] && adv[0] > adv[3] && adv[3] > adv[2]);
    }

    #[test]
    fn rloo_gives_each_response_its_leave_one_out_advantage_on_every_action() {
        // two prompts, k = 2; KL of every episode: (−1 − −1.5) = 0.5 per action
        let mk = |n: usize| {
            let mut e = ep(&[1], &vec![2; n]);
            e.logp_old = vec![-1.0; n];
            e.logp_ref = vec![-1.5; n];
            e
        };
        let mut eps = vec![mk(1), mk(3), mk(2), mk(2)];
        // returns: 2 − 0.2·0.5 = 1.9; 1 − 0.2·1.5 = 0.7; 0.8; 0.8
        // leave-one-out: (1.2, −1.2, 0, 0); sd (unbiased) of those = sqrt(2.88 / 3) = 0.9798
        assign_rloo(&mut eps, &[2.0, 1.0, 1.0, 1.0], 0.2, 2);
        let sd = (2.88f32 / 3.0).sqrt();
        let want = [1.2 / sd, -1.2 / sd, 0.0, 0.0];
        for (e, w) in eps.iter().zip(want) {
            assert_eq!(e.advantages.len(), e.actions.len());
            for &a in &e.advantages {
                assert!((a - w).abs() < 1e-5, "{a} vs {w}");
            }
        }
        assert!((eps[1].rewards[2] - (1.0 - 0.1)).abs() < 1e-6);
    }
}
