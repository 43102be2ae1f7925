//! Pure PPO / RLHF math on plain `f32` slices (no tensors, no dependencies).
//!
//! Everything here is a reference implementation of the scalar formulas used by
//! InstructGPT-style PPO-ptx training, following TRL's `PPOTrainer` conventions:
//!
//! * [`kl`]: per-token KL penalty and the per-token reward vector
//!   `r_t = -β·(log π_RL − log π_SFT)` plus the reward-model score on the last token.
//! * [`whiten`]: mean/std (unbiased variance) and whitening with eps `1e-8`.
//! * [`gae`]: generalized advantage estimation over one episode, terminal value 0.
//! * [`losses`]: clipped PPO policy / value losses, their diagnostics, the policy-loss
//!   gradient w.r.t. new log-probs, and a stable entropy from logits.
//! * [`kl_controller`]: fixed and adaptive (Ziegler et al. 2019) KL coefficient.
//! * [`rloo`]: RLOO's sequence return and leave-one-out advantages (no value model).
//! * [`dpo`]: the DPO pair loss (Rafailov et al. 2023), its gradient, and ranking statistics
//!   under implicit rewards `β·(log π − log π_ref)`.
//!
//! Conventions: all slices passed together to one function must have equal length
//! (checked with `debug_assert!`); means are accumulated in `f64` and returned as `f32`.

pub mod dpo;
pub mod gae;
pub mod kl;
pub mod kl_controller;
pub mod losses;
pub mod rloo;
pub mod whiten;

pub use gae::gae;
pub use kl::{clip_reward, kl_penalty, missing_eos_penalty, per_token_rewards};
pub use kl_controller::{adaptive_kl_multiplier, KlController};
pub use losses::{
    entropy_from_logits, ppo_clip_stats, ppo_policy_loss, ppo_policy_loss_grad, ppo_value_loss,
    ClipStats, PolicyLossOut, ValueLossOut,
};
pub use rloo::{leave_one_out, sequence_return};
pub use whiten::{mean_std, whiten};
