//! Gradient clipping by the GLOBAL norm over all parameters (as PyTorch's `clip_grad_norm_`).
//! burn's built-in `GradientClipping::Norm` clips each tensor separately, which changes the
//! direction of the update; this keeps it.

use crate::util::tensors::read_scalars;
use anyhow::Result;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

struct SumSquares<'a> {
    grads: &'a GradientsParams,
    acc: Option<Tensor<1>>,
}

impl ModuleVisitor for SumSquares<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.square().sum(); // (1,)
            self.acc = Some(match self.acc.take() {
                Some(a) => a + s,
                None => s,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads
                .register::<D>(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// Σ g² over all gradients of `module`'s parameters, left on the device as (1,) so a step can
/// read it together with its loss (one sync); `None` when no parameter has a gradient.
pub fn sum_squares<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    let mut v = SumSquares { grads, acc: None };
    module.visit(&mut v);
    v.acc
}

/// The global norm from a [`sum_squares`] read back.
pub fn norm_of(sum_squares: f32) -> f64 {
    (sum_squares as f64).sqrt()
}

/// Global L2 norm of all gradients of `module`'s parameters.
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> Result<f64> {
    Ok(match sum_squares(module, grads) {
        Some(a) => norm_of(read_scalars(vec![a])?[0]),
        None => 0.0,
    })
}

/// Scales all gradients so their global norm is at most `max_norm`; returns the norm before
/// clipping (also when it is not finite, so the caller can skip the step).
pub fn clip_global_norm<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> Result<f64> {
    let norm = global_norm(module, grads)?;
    clip_to_norm(module, grads, norm, max_norm);
    Ok(norm)
}

/// Scales all gradients by `max_norm / norm` when `norm` (their global norm, already read)
/// exceeds `max_norm`; a non-finite norm leaves them as they are (the guard skips the step).
pub fn clip_to_norm<M: Module>(module: &M, grads: &mut GradientsParams, norm: f64, max_norm: f64) {
    if norm.is_finite() && max_norm > 0.0 && norm > max_norm {
        let mut s = Scale {
            grads,
            factor: max_norm / (norm + 1e-6),
        };
        module.visit(&mut s);
    }
}
