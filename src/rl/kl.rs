//! Per-token KL penalty and the per-token reward vector used by PPO in RLHF.
//!
//! InstructGPT maximises `r(x, y) − β·log(π_RL(y|x) / π_SFT(y|x))`. The log-ratio is a
//! sum over response tokens, so (as in TRL / Ziegler et al.) it is charged per token:
//! every response token gets `−β·(log π_RL − log π_SFT)` and the scalar reward-model
//! score is added on the last response token only.

/// Per-token KL penalty `−β·(logp_policy[t] − logp_ref[t])`.
///
/// * `logp_policy`, `logp_ref`: log-probabilities (natural log, nats) of the *sampled*
///   response tokens under the policy being trained and the frozen reference (SFT)
///   model; shape `[T]` for one episode of `T` response tokens. Must be equal length.
/// * `beta`: KL coefficient (≥ 0), usually from a [`super::KlController`].
///
/// Returns a `[T]` vector in reward units. `logp_policy − logp_ref` is the single-sample
/// (k1) estimate of `KL(π_RL ‖ π_SFT)` at that token, so summing the penalty gives
/// `−β·KL` for the episode.
pub fn kl_penalty(logp_policy: &[f32], logp_ref: &[f32], beta: f32) -> Vec<f32> {
    debug_assert_eq!(
        logp_policy.len(),
        logp_ref.len(),
        "kl_penalty: length mismatch"
    );
    logp_policy
        .iter()
        .zip(logp_ref)
        .map(|(&p, &r)| -beta * (p - r))
        .collect()
}

/// Per-token rewards for one episode: [`kl_penalty`] with `score` added at the last token.
///
/// * `score`: scalar reward-model output `r(x, y)` for the whole response (optionally
///   passed through [`clip_reward`] first).
/// * `logp_policy`, `logp_ref`: `[T]` log-probs of the response tokens (see [`kl_penalty`]).
///
/// Returns `[T]` rewards, `r_t = −β·(logp_policy[t] − logp_ref[t]) + [t == T−1]·score`.
/// The score goes on the last token because the reward model only judges the finished
/// response; GAE then propagates it back. With `T == 0` the result is empty (the score
/// has no token to attach to; callers should not produce empty responses).
pub fn per_token_rewards(score: f32, logp_policy: &[f32], logp_ref: &[f32], beta: f32) -> Vec<f32> {
    let mut rewards = kl_penalty(logp_policy, logp_ref, beta);
    if let Some(last) = rewards.last_mut() {
        *last += score;
    }
    rewards
}

/// Optionally clip a reward-model score to `[-clip, clip]` (TRL's `score_clip`).
///
/// `None` returns `score` unchanged. `clip` must be non-negative. Clipping guards PPO
/// against rare, huge reward-model outputs that would dominate the advantages.
pub fn clip_reward(score: f32, clip: Option<f32>) -> f32 {
    match clip {
        Some(c) => {
            debug_assert!(c >= 0.0, "clip_reward: clip must be >= 0");
            score.clamp(-c, c)
        }
        None => score,
    }
}

/// The score of an episode after the missing-EOS penalty: `score − penalty` when the response
/// ran into the token limit instead of ending with `<|endoftext|>`, else `score`.
///
/// Why: a reward model read at the last token scores a cut-off response as if it were complete,
/// and when it likes long answers (VADER's compound grows with every positive word) PPO learns to
/// fill the limit: every response then hits `max_new_tokens`, the KL per response grows with the
/// length, and samples stop mid-sentence. TRL's `missing_eos_penalty` is the same remedy.
pub fn missing_eos_penalty(score: f32, ended: bool, penalty: Option<f32>) -> f32 {
    match penalty {
        Some(p) if !ended => score - p,
        _ => score,
    }
}
