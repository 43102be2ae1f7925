//! The stages and their math in-process: pretraining and SFT, the reward model, DPO, PPO and
//! RLOO, best-of-n, the RL formulas, evaluation, reports and chat.
//! One test binary for the area (each links the whole crate): a module per file.

#[path = "../common/mod.rs"]
mod common;
#[path = "../fixtures/mod.rs"]
mod fixtures;

mod best_of_n;
mod bradley_terry;
mod chat;
mod dpo;
mod eval;
mod ppo;
mod report;
mod rl_math;
mod rm;
mod stages;
