//! KL-coefficient controllers: fixed β, or the adaptive controller of Ziegler et al.
//! 2019 ("Fine-Tuning Language Models from Human Preferences"), as in TRL.
//!
//! One enum with plain fields and `serde`, so a PPO checkpoint can carry the controller's state.

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

/// The KL coefficient β: fixed, or adapted towards a target KL. Saved in PPO's
/// `train_state.json` as `{"Fixed":{"value":β}}` or
/// `{"Adaptive":{"value":β,"target":…,"horizon":…}}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum KlController {
    /// Constant β.
    Fixed {
        /// β.
        value: f32,
    },
    /// Ziegler et al.'s adaptive β, steered towards `target`.
    Adaptive {
        /// Current β (initialised to the initial KL coefficient).
        value: f32,
        /// Target KL in nats per episode (TRL default 6).
        target: f32,
        /// Horizon in episodes (TRL default 10000): larger means slower adaptation.
        horizon: usize,
    },
}

impl KlController {
    /// A fixed controller with coefficient `value`.
    pub fn fixed(value: f32) -> Self {
        KlController::Fixed { value }
    }

    /// An adaptive controller starting at `init`, steering towards `target` over `horizon`.
    pub fn adaptive(init: f32, target: f32, horizon: usize) -> Self {
        KlController::Adaptive {
            value: init,
            target,
            horizon,
        }
    }

    /// Current β.
    pub fn value(&self) -> f32 {
        match self {
            KlController::Fixed { value } | KlController::Adaptive { value, .. } => *value,
        }
    }

    /// Feed the KL measured over `n_steps` episodes (nats per episode, mean over them). A fixed
    /// β ignores it; an adaptive one becomes
    /// `value · adaptive_kl_multiplier(current_kl, target, horizon, n_steps)`: it grows when the
    /// KL is above target and shrinks when below, by at most a factor `1 ± 0.2·n_steps/horizon`.
    pub fn update(&mut self, current_kl: f32, n_steps: usize) {
        if let KlController::Adaptive {
            value,
            target,
            horizon,
        } = self
        {
            *value *= adaptive_kl_multiplier(current_kl, *target, *horizon, n_steps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `train_state.json` keeps the form of the two structs wrapped in an enum that this enum
    /// replaced (the JSON below is what they wrote), so saved PPO runs resume.
    #[test]
    fn saved_form_is_unchanged() {
        let fixed = KlController::fixed(0.05);
        let adaptive = KlController::adaptive(0.1, 6.0, 10_000);
        let old_fixed = r#"{"Fixed":{"value":0.05}}"#;
        let old_adaptive = r#"{"Adaptive":{"value":0.1,"target":6.0,"horizon":10000}}"#;
        assert_eq!(serde_json::to_string(&fixed).unwrap(), old_fixed);
        assert_eq!(serde_json::to_string(&adaptive).unwrap(), old_adaptive);
        let read = |s: &str| serde_json::from_str::<KlController>(s).unwrap();
        assert_eq!(read(old_fixed), fixed);
        assert_eq!(read(old_adaptive), adaptive);
    }
}
