//! Generalized Advantage Estimation (Schulman et al. 2016) for one episode.

/// GAE over the `T` response tokens of one episode.
///
/// * `rewards`: `[T]` per-token rewards (e.g. from [`super::per_token_rewards`]).
/// * `values`: `[T]` value-head predictions `V(s_t)` for the same tokens (old policy,
///   i.e. from the rollout). Must have the same length as `rewards`.
/// * `gamma`: discount, `lambda`: GAE mixing factor, both in `[0, 1]`.
///
/// Recursion, with the value after the last token taken as 0 (the episode terminates):
/// `δ_t = r_t + γ·V(s_{t+1}) − V(s_t)`, `A_t = δ_t + γλ·A_{t+1}`, `A_T = 0`, `V(s_T) = 0`.
///
/// Returns `(advantages, returns)`, both `[T]`, with `returns = advantages + values`
/// (the λ-return target for the value loss, as in TRL). With `λ = 1` the returns are the
/// plain discounted Monte-Carlo returns; with `λ = 0` the advantages are the TD errors.
pub fn gae(rewards: &[f32], values: &[f32], gamma: f32, lambda: f32) -> (Vec<f32>, Vec<f32>) {
    debug_assert_eq!(rewards.len(), values.len(), "gae: length mismatch");
    let n = rewards.len();
    let mut advantages = vec![0.0f32; n];
    let mut last_gae = 0.0f32;
    for t in (0..n).rev() {
        let next_value = if t + 1 < n { values[t + 1] } else { 0.0 };
        let delta = rewards[t] + gamma * next_value - values[t];
        last_gae = delta + gamma * lambda * last_gae;
        advantages[t] = last_gae;
    }
    let returns = advantages.iter().zip(values).map(|(a, v)| a + v).collect();
    (advantages, returns)
}
