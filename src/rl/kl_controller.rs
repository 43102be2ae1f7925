//! KL-coefficient controllers: fixed β, or the adaptive controller of Ziegler et al.
//! 2019 ("Fine-Tuning Language Models from Human Preferences"), as in TRL.
//!
//! Plain fields with `serde`, so a PPO checkpoint can carry the controller's state.

/// Multiplier applied to β by the adaptive controller for one update.
///
/// `e = clip(current_kl / target − 1, −0.2, 0.2)`, `mult = 1 + e · n_steps / horizon`.
/// `current_kl` and `target` are in nats per episode (summed over tokens); `n_steps`
/// is how many episodes the measurement covers (TRL passes the batch size).
pub fn adaptive_kl_multiplier(current_kl: f32, target: f32, horizon: usize, n_steps: usize) -> f32 {
    debug_assert!(
        target > 0.0 && horizon > 0,
        "adaptive KL: target, horizon must be > 0"
    );
    let proportional_error = (current_kl / target - 1.0).clamp(-0.2, 0.2);
    1.0 + proportional_error * n_steps as f32 / horizon as f32
}

/// Constant KL coefficient β.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FixedKlController {
    /// β.
    pub value: f32,
}

impl FixedKlController {
    /// Current β.
    pub fn value(&self) -> f32 {
        self.value
    }

    /// No-op: a fixed controller ignores the measured KL.
    pub fn update(&mut self, _current_kl: f32, _n_steps: usize) {}
}

/// Adaptive KL coefficient that steers the measured KL towards `target`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdaptiveKlController {
    /// Current β (initialised to the initial KL coefficient).
    pub value: f32,
    /// Target KL in nats per episode (TRL default 6).
    pub target: f32,
    /// Horizon in episodes (TRL default 10000): larger means slower adaptation.
    pub horizon: usize,
}

impl AdaptiveKlController {
    /// Current β.
    pub fn value(&self) -> f32 {
        self.value
    }

    /// `value *= adaptive_kl_multiplier(current_kl, target, horizon, n_steps)`.
    ///
    /// β grows when the KL is above target and shrinks when below, by at most a factor
    /// `1 ± 0.2·n_steps/horizon` per update.
    pub fn update(&mut self, current_kl: f32, n_steps: usize) {
        self.value *= adaptive_kl_multiplier(current_kl, self.target, self.horizon, n_steps);
    }
}

/// Either controller, chosen by configuration. Match as `KlController::Fixed { .. }` /
/// `KlController::Adaptive { .. }`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum KlController {
    /// Constant β.
    Fixed(FixedKlController),
    /// Ziegler et al. adaptive β.
    Adaptive(AdaptiveKlController),
}

impl KlController {
    /// A fixed controller with coefficient `value`.
    pub fn fixed(value: f32) -> Self {
        KlController::Fixed(FixedKlController { value })
    }

    /// An adaptive controller starting at `init`, steering towards `target` over `horizon`.
    pub fn adaptive(init: f32, target: f32, horizon: usize) -> Self {
        KlController::Adaptive(AdaptiveKlController {
            value: init,
            target,
            horizon,
        })
    }

    /// Current β.
    pub fn value(&self) -> f32 {
        match self {
            KlController::Fixed(c) => c.value(),
            KlController::Adaptive(c) => c.value(),
        }
    }

    /// Feed the KL measured over `n_steps` episodes (nats per episode, mean over them).
    pub fn update(&mut self, current_kl: f32, n_steps: usize) {
        match self {
            KlController::Fixed(c) => c.update(current_kl, n_steps),
            KlController::Adaptive(c) => c.update(current_kl, n_steps),
        }
    }
}
