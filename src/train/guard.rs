//! The numerical guard shared by every training loop (pretrain, SFT, RM, and PPO).
//!
//! - A step whose loss or global gradient norm is not finite is skipped (no optimizer update)
//!   and logged with its step number ([`Guard::check`]).
//! - After `max_bad` consecutive skipped steps the stage stops with an error that names the last
//!   good checkpoint ([`Guard::saved`] records it), since continuing would only burn time.
//! - `checkpoint::check_finite` names the tensors holding a NaN or ±inf; `checkpoint::save`
//!   refuses such weights, so nothing non-finite is ever written into a checkpoint, and loading
//!   refuses them.
//!
//! # Test hook
//!
//! `RLHF_INJECT_NAN_AT_STEP` (read once by [`Guard::new`]) poisons the loss with NaN at the
//! listed 0-based optimizer steps, so the NaN flows through backward into every gradient exactly
//! as a real blow-up would. Syntax: a comma list of steps and inclusive ranges, a range open at
//! the top meaning "from then on": `3`, `3,5`, `4-6`, `5-`. It exists for the tests in
//! `tests/commands/nan_guard.rs`; leave it unset in real runs.

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use std::path::{Path, PathBuf};

/// The environment variable of the NaN-injection test hook.
pub const INJECT_NAN_ENV: &str = "RLHF_INJECT_NAN_AT_STEP";

/// A set of 0-based steps: inclusive ranges (`usize::MAX` as the top of an open range).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepSet(Vec<(usize, usize)>);

impl StepSet {
    /// Parses `3`, `3,5`, `4-6`, `5-` (see the module docs); empty text is the empty set.
    pub fn parse(text: &str) -> Result<Self> {
        let mut v = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let num = |s: &str| -> Result<usize> {
                s.trim()
                    .parse()
                    .with_context(|| format!("'{s}' in '{text}' is not a step number"))
            };
            let range = match part.split_once('-') {
                None => (num(part)?, num(part)?),
                Some((a, b)) if b.trim().is_empty() => (num(a)?, usize::MAX),
                Some((a, b)) => (num(a)?, num(b)?),
            };
            if range.0 > range.1 {
                bail!("empty step range '{part}' in '{text}'");
            }
            v.push(range);
        }
        Ok(Self(v))
    }

    pub fn contains(&self, step: usize) -> bool {
        self.0.iter().any(|&(a, b)| (a..=b).contains(&step))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The steps named by `RLHF_INJECT_NAN_AT_STEP` (empty when it is unset).
    pub fn from_env() -> Result<Self> {
        match std::env::var(INJECT_NAN_ENV) {
            Ok(v) => Self::parse(&v).with_context(|| format!("{INJECT_NAN_ENV}={v}")),
            Err(_) => Ok(Self::default()),
        }
    }
}

/// What to do with a step's gradients.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Everything finite: apply the update.
    Apply,
    /// Skip the update; the message (with the step number) is for the log.
    Skip(String),
}

/// Counts non-finite steps of one stage; see the module docs.
#[derive(Debug, Clone)]
pub struct Guard {
    stage: String,
    max_bad: usize,
    inject: StepSet,
    consecutive: usize,
    first_bad: usize,
    skipped: usize,
    last_saved: Option<(PathBuf, usize)>,
}

impl Guard {
    /// A guard for `stage` that stops after `max_bad` consecutive non-finite steps (at least 1),
    /// with the NaN-injection test hook read from the environment.
    pub fn new(stage: &str, max_bad: usize) -> Result<Self> {
        Ok(Self::with_injection(stage, max_bad, StepSet::from_env()?))
    }

    /// As [`Guard::new`], with the injected steps given explicitly.
    pub fn with_injection(stage: &str, max_bad: usize, inject: StepSet) -> Self {
        Self {
            stage: stage.to_string(),
            max_bad: max_bad.max(1),
            inject,
            consecutive: 0,
            first_bad: 0,
            skipped: 0,
            last_saved: None,
        }
    }

    /// Test hook: `loss × NaN` at an injected step (so backward yields NaN gradients too), the
    /// loss unchanged otherwise. Call it on the loss before `backward()`.
    pub fn poison<const D: usize>(&self, step: usize, loss: Tensor<D>) -> Tensor<D> {
        if self.inject.contains(step) {
            loss.mul_scalar(f32::NAN)
        } else {
            loss
        }
    }

    /// Judges 0-based `step` from its loss and gradient norm (before clipping). Errs when this
    /// is the `max_bad`-th non-finite step in a row.
    pub fn check(&mut self, step: usize, loss: f64, grad_norm: f64) -> Result<Verdict> {
        if loss.is_finite() && grad_norm.is_finite() {
            self.consecutive = 0;
            return Ok(Verdict::Apply);
        }
        if self.consecutive == 0 {
            self.first_bad = step;
        }
        self.consecutive += 1;
        self.skipped += 1;
        if self.consecutive >= self.max_bad {
            let last = match &self.last_saved {
                Some((dir, s)) => format!(
                    "the last good checkpoint is {} (step {s}); rerun with --resume to continue \
                     from it, e.g. with a lower --lr",
                    dir.display()
                ),
                None => "no checkpoint was written before it".to_string(),
            };
            bail!(
                "{}: {} consecutive non-finite losses or gradients (steps {}..={step}), \
                 stopping; {last}",
                self.stage,
                self.consecutive,
                self.first_bad
            );
        }
        Ok(Verdict::Skip(format!(
            "{}: step {step}: non-finite loss or gradient (loss {loss}, grad norm {grad_norm}); \
             update skipped ({} in a row, the stage stops at {})",
            self.stage, self.consecutive, self.max_bad
        )))
    }

    /// Records that a checkpoint holding `step` optimizer steps was written to (or resumed from)
    /// `dir`, for the message when the stage stops.
    pub fn saved(&mut self, dir: &Path, step: usize) {
        self.last_saved = Some((dir.to_path_buf(), step));
    }

    /// Steps skipped so far in this run.
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_sets_parse() {
        let s = StepSet::parse("3, 5-6,9-").unwrap();
        let hits: Vec<usize> = (0..12).filter(|&i| s.contains(i)).collect();
        assert_eq!(hits, vec![3, 5, 6, 9, 10, 11]);
        assert!(StepSet::parse("").unwrap().is_empty());
        assert!(StepSet::parse("x").is_err());
        assert!(StepSet::parse("5-2").is_err());
    }

    #[test]
    fn guard_skips_then_stops_after_max_in_a_row() {
        let mut g = Guard::with_injection("t", 3, StepSet::default());
        assert_eq!(g.check(0, 1.0, 1.0).unwrap(), Verdict::Apply);
        assert!(
            matches!(g.check(1, f64::NAN, 1.0).unwrap(), Verdict::Skip(m) if m.contains("step 1:"))
        );
        assert_eq!(g.check(2, 1.0, 1.0).unwrap(), Verdict::Apply); // the streak resets
        g.saved(Path::new("/x/ckpt"), 2);
        assert!(matches!(
            g.check(3, 1.0, f64::INFINITY).unwrap(),
            Verdict::Skip(_)
        ));
        assert!(matches!(
            g.check(4, f64::NAN, f64::NAN).unwrap(),
            Verdict::Skip(_)
        ));
        let e = format!("{:#}", g.check(5, f64::NAN, 0.5).unwrap_err());
        assert!(
            e.contains("3 consecutive non-finite losses or gradients (steps 3..=5)"),
            "{e}"
        );
        assert!(
            e.contains("last good checkpoint is /x/ckpt (step 2)"),
            "{e}"
        );
        assert_eq!(g.skipped(), 4);
    }

    #[test]
    fn poison_and_finite_check() {
        let d = Device::flex();
        let g = Guard::with_injection("t", 3, StepSet::parse("1").unwrap());
        let x = Tensor::<1>::from_floats([2.0], &d);
        assert_eq!(g.poison(0, x.clone()).into_scalar::<f32>(), 2.0);
        assert!(g.poison(1, x).into_scalar::<f32>().is_nan());
        let mut cfg = crate::config::ModelConfig::preset("tiny").unwrap();
        cfg.vocab_size = 16;
        let m = crate::model::Gpt::zeroed(&cfg, &d);
        crate::checkpoint::check_finite(&m).unwrap();
        let mut m = m;
        m.ln_f.weight = m.ln_f.weight.map(|w| w.mul_scalar(f32::NAN));
        let e = format!("{:#}", crate::checkpoint::check_finite(&m).unwrap_err());
        assert!(
            e.contains("1 tensor(s)") && e.contains("ln_f.weight"),
            "{e}"
        );
    }
}
