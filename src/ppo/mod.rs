//! PPO-ptx on tensors: episodes and their padded grid, rollouts (sampling, log-probs, values,
//! scores), the tensor losses and one learner step. The scalar math lives in `crate::rl`; the
//! stage that drives iterations, metrics and checkpoints is `crate::stages::ppo`.

pub mod episode;
pub mod learner;
pub mod loss;
pub mod rollout;

pub use episode::{assign_rewards, assign_rloo, Episode, Grid};
pub use learner::{Critic, Learner, StepStats};
pub use rollout::{rollout, RolloutModels, Scorer};
