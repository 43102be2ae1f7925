//! The optimizer every stage uses: AdamW as PyTorch's (ε 1e-8), with the stage's β2 and
//! decoupled weight decay; and a stage's learning-rate schedule from its settings.

use super::schedule::LrSchedule;
use crate::config::TrainConfig;
use burn::optim::{AdamWConfig, ModuleOptimizer};

/// AdamW with Adam β2 `beta2` and decoupled weight decay `weight_decay` (ε 1e-8, as PyTorch).
pub fn adamw(beta2: f64, weight_decay: f64) -> ModuleOptimizer {
    AdamWConfig::new()
        .with_beta_2(beta2 as f32)
        .with_weight_decay(weight_decay as f32)
        .with_epsilon(1e-8)
        .init()
}

/// The optimizer of a stage with these settings.
pub fn stage_optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
    adamw(cfg.beta2, cfg.weight_decay)
}

/// Warmup + cosine decay to `lr · min_lr_ratio` over `steps`.
pub fn stage_schedule(cfg: &TrainConfig) -> LrSchedule {
    LrSchedule {
        lr: cfg.lr,
        min_lr: cfg.lr * cfg.min_lr_ratio,
        warmup: cfg.warmup.min(cfg.steps),
        total: cfg.steps,
    }
}
