//! The one training loop every stage runs through (pretrain, SFT, the reward model, PPO).
//!
//! The [`Trainer`] owns what every stage needs the same way: resuming (the checkpoint to go on
//! from, the message, metrics rows past it dropped), the non-finite guard, held-out evaluation
//! and checkpoint cadence, the progress bar, `metrics.csv` and the timing of the run. A stage
//! implements [`Stage`]: one optimisation step, one evaluation, one metrics row, one save. It
//! never copies the loop, so resume, guard and cadence behave alike in every stage.
//!
//! Order of one step (the stages' numbers depend on it, so it is fixed here): step → count it →
//! evaluate when due → write the row → progress → mark finished after the last → save when due.

use crate::checkpoint::TrainState;
use crate::config::TrainConfig;
use crate::train::guard::{Guard, Verdict};
use crate::train::metrics::{log_line, progress_bar, MetricRow, MetricsWriter};
use crate::util::rng::Rng;
use anyhow::Result;
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// When a stage stops, evaluates and saves; all counts are optimizer steps (PPO: iterations).
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    /// Steps of the whole stage (a resumed run stops at the same place).
    pub steps: usize,
    /// Evaluate before the first step, every this many steps and after the last; `None`: the
    /// stage has no held-out evaluation.
    pub eval_every: Option<usize>,
    /// Write a resumable checkpoint every this many steps and after the last.
    pub checkpoint_every: usize,
    /// Stop after this many consecutive non-finite steps (`train::guard`).
    pub max_bad_steps: usize,
}

impl Cadence {
    /// The cadence of a stage with held-out evaluation (pretrain, SFT, the RM).
    pub fn of(cfg: &TrainConfig) -> Self {
        Self {
            steps: cfg.steps,
            eval_every: Some(cfg.eval_every),
            checkpoint_every: cfg.checkpoint_every,
            max_bad_steps: cfg.max_bad_steps,
        }
    }
}

/// Where a run starts: a fresh state, or the state of the checkpoint it resumes from.
pub struct Start {
    pub state: TrainState,
    /// The checkpoint the stage resumed from (`None`: a fresh start).
    pub resumed: Option<PathBuf>,
}

impl Start {
    /// A stage that has not run yet, its data RNG seeded with `seed`.
    pub fn fresh(seed: u64) -> Self {
        Self {
            state: TrainState {
                step: 0,
                rng: Rng::new(seed),
                finished: false,
                extra: serde_json::Value::Null,
            },
            resumed: None,
        }
    }
}

/// What a stage gives the loop.
pub trait Stage {
    /// What one held-out evaluation reports.
    type Eval: Clone;
    /// One `metrics.csv` row.
    type Row: MetricRow;

    /// One optimisation step at 0-based `step`; data is drawn from `ctx.rng`, and an update is
    /// applied only when [`StepCtx::judge`] (or the stage's own use of `ctx.guard`) allows it.
    /// Returns the step's row, its evaluation columns empty (NaN).
    fn step(&mut self, step: usize, ctx: &mut StepCtx<'_>) -> Result<Self::Row>;

    /// A held-out evaluation of the current model (only called when `Cadence::eval_every` is set).
    fn eval(&mut self) -> Result<Self::Eval>;

    /// The step's row with this step's evaluation, if one was due, filled in.
    fn with_eval(&self, row: Self::Row, eval: Option<&Self::Eval>) -> Self::Row;

    /// The progress bar's message after a step; `last_eval` is the latest evaluation.
    fn message(&self, row: &Self::Row, last_eval: Option<&Self::Eval>) -> String;

    /// Writes a resumable checkpoint holding `state`; returns its directory.
    fn save(&mut self, state: &TrainState) -> Result<PathBuf>;
}

/// What a step may use of the loop's state.
pub struct StepCtx<'a> {
    /// The RNG that draws the data (saved in every checkpoint: it is the data position).
    pub rng: &'a mut Rng,
    pub guard: &'a mut Guard,
    pub pb: &'a ProgressBar,
}

impl StepCtx<'_> {
    /// The guard's verdict on a step's loss and gradient norm: true to apply the update; a
    /// skipped step is logged above the progress bar.
    pub fn judge(&mut self, step: usize, loss: f64, grad_norm: f64) -> Result<bool> {
        match self.guard.check(step, loss, grad_norm)? {
            Verdict::Apply => Ok(true),
            Verdict::Skip(msg) => {
                self.log(msg);
                Ok(false)
            }
        }
    }

    /// A line above the progress bar.
    pub fn log(&self, line: impl AsRef<str>) {
        log_line(self.pb, line);
    }
}

/// One run of a stage's loop.
pub struct Trainer<'a> {
    /// Stage name in messages and on the progress bar (`pretrain`, `rm`, `ppo`).
    pub name: &'a str,
    /// What one step is called in the resume message (`step`, `iteration`).
    pub unit: &'a str,
    /// The stage directory (`metrics.csv`, `ckpt/`).
    pub out: &'a Path,
    pub cadence: Cadence,
}

/// What the loop saw, for the stage's summary.
pub struct Finished<S: Stage> {
    /// The state after the last step (what the last checkpoint holds).
    pub state: TrainState,
    /// Steps run by this invocation (0 when it resumed a finished stage).
    pub steps_run: usize,
    /// The evaluation before the first step of this invocation, and the latest one.
    pub first_eval: Option<S::Eval>,
    pub last_eval: Option<S::Eval>,
    /// The rows of the first and last step of this invocation.
    pub first_row: Option<S::Row>,
    pub last_row: Option<S::Row>,
    /// Steps the guard skipped.
    pub skipped: usize,
    /// Seconds from the first step to the end of the last.
    pub seconds: f64,
}

impl<S: Stage> Finished<S> {
    /// `count` (something counted over this invocation's steps) per step run; NaN when no
    /// step ran (a resumed finished stage).
    pub fn per_step(&self, count: usize) -> f64 {
        if self.steps_run > 0 {
            count as f64 / self.steps_run as f64
        } else {
            f64::NAN
        }
    }
}

impl Trainer<'_> {
    /// Runs `stage` from `start` to `cadence.steps`.
    pub fn run<S: Stage>(&self, stage: &mut S, start: Start) -> Result<Finished<S>> {
        let c = self.cadence;
        let mut state = start.state;
        let mut guard = Guard::new(self.name, c.max_bad_steps)?;
        if let Some(dir) = &start.resumed {
            guard.saved(dir, state.step);
            eprintln!(
                "{}: resuming from {} at {} {}",
                self.name,
                dir.display(),
                self.unit,
                state.step
            );
        }
        let resumed_at = (state.step > 0).then_some(state.step);
        let mut metrics = MetricsWriter::open(self.out, &S::Row::columns(), resumed_at)?;
        let first_eval = match c.eval_every {
            Some(_) => Some(stage.eval()?),
            None => None,
        };
        let pb = progress_bar(c.steps as u64, self.name);
        pb.set_position(state.step as u64);
        let t0 = Instant::now();
        let start_step = state.step;
        let mut last_eval = first_eval.clone();
        let (mut first_row, mut last_row) = (None, None);
        while state.step < c.steps {
            let mut ctx = StepCtx {
                rng: &mut state.rng,
                guard: &mut guard,
                pb: &pb,
            };
            let row = stage.step(state.step, &mut ctx)?;
            state.step += 1;
            let is_last = state.step == c.steps;
            let eval = match c.eval_every {
                Some(n) if state.step.is_multiple_of(n.max(1)) || is_last => Some(stage.eval()?),
                _ => None,
            };
            if eval.is_some() {
                last_eval.clone_from(&eval);
            }
            let row = stage.with_eval(row, eval.as_ref());
            let values: Vec<f64> = row.fields().into_iter().map(|(_, v)| v).collect();
            metrics.row(state.step, &values)?;
            pb.set_message(stage.message(&row, last_eval.as_ref()));
            pb.inc(1);
            state.finished = is_last;
            if state.step.is_multiple_of(c.checkpoint_every.max(1)) || is_last {
                let dir = stage.save(&state)?;
                guard.saved(&dir, state.step);
            }
            first_row.get_or_insert_with(|| row.clone());
            last_row = Some(row);
        }
        pb.finish_and_clear();
        Ok(Finished {
            steps_run: state.step - start_step,
            state,
            first_eval,
            last_eval,
            first_row,
            last_row,
            skipped: guard.skipped(),
            seconds: t0.elapsed().as_secs_f64(),
        })
    }
}
