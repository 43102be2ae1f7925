//! Gradient clipping by the GLOBAL norm over all parameters (as PyTorch's `clip_grad_norm_`).
//! burn's built-in `GradientClipping::Norm` clips each tensor separately, which changes the
//! direction of the update; this keeps it.

use crate::kernels::sum_squares::sum_of_squares;
use crate::util::tensors::read_scalars;
use anyhow::Result;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

/// Every gradient of a module's parameters, flattened, in the module's order.
struct Flat<'a> {
    grads: &'a GradientsParams,
    all: Vec<Tensor<1>>,
}

impl ModuleVisitor for Flat<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let n = g.shape().num_elements();
            self.all.push(g.reshape([n]));
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
/// read it together with its loss (one sync); `None` when no parameter has a gradient. On wgpu
/// one dispatch per tensor ([`sum_of_squares`]).
pub fn sum_squares<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    let mut v = Flat {
        grads,
        all: Vec::new(),
    };
    module.visit(&mut v);
    sum_of_squares(v.all)
}

/// A step's values and the global norms of its gradients, read back in ONE transfer: the
/// elements of `values` in order, then one norm per entry of `squares` (each a [`sum_squares`];
/// 0 where there was no gradient).
pub fn read_with_norms(
    values: Vec<Tensor<1>>,
    squares: Vec<Option<Tensor<1>>>,
) -> Result<(Vec<f32>, Vec<f64>)> {
    let n: usize = values.iter().map(|t| t.dims()[0]).sum();
    let present: Vec<bool> = squares.iter().map(Option::is_some).collect();
    let mut read = values;
    read.extend(squares.into_iter().flatten());
    let mut v = read_scalars(read)?;
    let mut sq = v.split_off(n).into_iter();
    let norms = present
        .iter()
        .map(|&p| match p {
            true => sq.next().map_or(0.0, |s| (s as f64).sqrt()),
            false => 0.0,
        })
        .collect();
    Ok((v, norms))
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
