//! A model in training with its optimizer, learning-rate schedule and gradient clip, and the one
//! way a stage applies a step's gradient: clip it by its global norm, take the step's learning
//! rate, ask the non-finite guard, and only then step the optimizer.

use super::clip::clip_to_norm;
use super::optim::stage_schedule;
use super::schedule::LrSchedule;
use super::trainer::StepCtx;
use crate::config::TrainConfig;
use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};

/// A model in training. burn's optimizer takes the model by value and returns the updated one,
/// so the model sits in an `Option` that is `None` only during a step.
pub struct Trained<M> {
    model: Option<M>,
    pub optim: ModuleOptimizer,
    sched: LrSchedule,
    /// Largest global gradient norm applied; larger gradients are scaled down to it.
    grad_clip: f64,
}

/// What one step's gradient gave: its loss and global norm before clipping, and the gradient.
pub struct StepGrads {
    pub loss: f64,
    pub grad_norm: f64,
    pub grads: GradientsParams,
}

/// What [`Trained::update`] did.
#[derive(Debug, Clone, Copy)]
pub struct Update {
    /// The learning rate of the step (logged whether or not the update was applied).
    pub lr: f64,
    /// False when the guard skipped the step (non-finite loss or gradient).
    pub applied: bool,
}

impl<M: Module> Trained<M> {
    /// `model` trained by `optim` with the schedule and clip of the stage's settings.
    pub fn new(model: M, optim: ModuleOptimizer, cfg: &TrainConfig) -> Self {
        Self {
            model: Some(model),
            optim,
            sched: stage_schedule(cfg),
            grad_clip: cfg.grad_clip,
        }
    }

    /// The current model.
    pub fn model(&self) -> Result<&M> {
        self.model
            .as_ref()
            .context("the model was lost in a failed step")
    }

    /// Applies the gradient of 0-based `step`: clipped to the stage's clip by its norm, at the
    /// step's learning rate, when the guard allows it (a skipped step is logged).
    pub fn update(&mut self, step: usize, ctx: &mut StepCtx<'_>, g: StepGrads) -> Result<Update> {
        let StepGrads {
            loss,
            grad_norm,
            mut grads,
        } = g;
        clip_to_norm(self.model()?, &mut grads, grad_norm, self.grad_clip);
        let lr = self.sched.at(step);
        let applied = ctx.judge(step, loss, grad_norm)?;
        if applied {
            let model = self
                .model
                .take()
                .context("the model was lost in a failed step")?;
            self.model = Some(self.optim.step(lr, model, grads));
        }
        Ok(Update { lr, applied })
    }

    /// The trained model.
    pub fn into_model(self) -> Result<M> {
        self.model.context("the model was lost in a failed step")
    }
}
