//! Gradient clipping by the GLOBAL norm over all parameters (as PyTorch's `clip_grad_norm_`).
//! burn's built-in `GradientClipping::Norm` clips each tensor separately, which changes the
//! direction of the update; this keeps it.

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

/// Global L2 norm of all gradients of `module`'s parameters.
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut v = SumSquares { grads, acc: None };
    module.visit(&mut v);
    match v.acc {
        Some(a) => (a.into_scalar::<f32>() as f64).sqrt(),
        None => 0.0,
    }
}

/// Scales all gradients so their global norm is at most `max_norm`; returns the norm before
/// clipping (also when it is not finite, so the caller can skip the step).
pub fn clip_global_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let norm = global_norm(module, grads);
    if norm.is_finite() && max_norm > 0.0 && norm > max_norm {
        let mut s = Scale {
            grads,
            factor: max_norm / (norm + 1e-6),
        };
        module.visit(&mut s);
    }
    norm
}
