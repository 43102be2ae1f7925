//! Learning-rate schedule: linear warmup then cosine decay to `min_lr` (nanoGPT).

use serde::{Deserialize, Serialize};

/// Warmup + cosine schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LrSchedule {
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the decay.
    pub min_lr: f64,
    /// Steps of linear warmup from 0.
    pub warmup: usize,
    /// Total steps; after it the rate stays at `min_lr`.
    pub total: usize,
}

impl LrSchedule {
    /// Learning rate for 0-based `step`.
    pub fn at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        if step >= self.total {
            return self.min_lr;
        }
        let span = (self.total - self.warmup).max(1) as f64;
        let progress = (step - self.warmup) as f64 / span;
        let coeff = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.min_lr + coeff * (self.lr - self.min_lr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let s = LrSchedule {
            lr: 1.0,
            min_lr: 0.1,
            warmup: 10,
            total: 110,
        };
        assert!((s.at(0) - 0.1).abs() < 1e-12);
        assert!((s.at(9) - 1.0).abs() < 1e-12);
        assert!((s.at(10) - 1.0).abs() < 1e-12);
        // halfway through the decay: cos(pi/2) = 0 → min + 0.5 (max - min) = 0.55
        assert!((s.at(60) - 0.55).abs() < 1e-12);
        assert!((s.at(500) - 0.1).abs() < 1e-12);
    }
}
