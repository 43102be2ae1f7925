//! The masked language-modelling loss and its gradient with the memory of
//! [`super::recompute`]: logits only at the weighted positions, a chunk of them at a time, and
//! the trunk optionally recomputed block by block. The loss is [`crate::model::loss::masked_nll`]'s
//! (`−Σ w·log p / max(Σ w, 1)`), the gradient the plain backward's up to summation order.

use super::recompute::{gather_rows, head_backward, spread_rows, trunk_backward, Head, Top};
use crate::data::batching::Batch;
use crate::model::Lm;
use crate::util::tensors::{floats, ints};
use anyhow::Result;
use burn::optim::GradientsParams;
use burn::prelude::*;

/// The masked NLL of `batch` under `lm` (on an autodiff device) and its gradients; `poison`
/// is applied to each chunk's share of the loss (the guard's NaN-injection hook).
/// Returns the loss (1,) without a graph, and the gradients.
pub fn nll_backward(
    lm: &Lm,
    batch: &Batch,
    checkpoint: bool,
    poison: impl Fn(Tensor<1>) -> Tensor<1>,
    ad: &Device,
) -> Result<(Tensor<1>, GradientsParams)> {
    let (b, t) = (batch.b, batch.t);
    let at_host: Vec<i64> = (0..b * t)
        .filter(|&i| batch.w[i] > 0.0)
        .map(|i| i as i64)
        .collect();
    let n = at_host.len();
    if n == 0 {
        return Ok((Tensor::zeros([1], ad), GradientsParams::new()));
    }
    let targets: Vec<i64> = at_host.iter().map(|&i| batch.y[i as usize]).collect();
    let weights: Vec<f32> = at_host.iter().map(|&i| batch.w[i as usize]).collect();
    let count = (batch.weight_sum() as f32).max(1.0);
    let (at, w) = (ints(&at_host, [n], ad), floats(&weights, [n], ad));
    let top = |hidden: Tensor<3>| -> Result<Top<Tensor<1>>> {
        let h = gather_rows(hidden.detach(), at.clone());
        let (out, dh, grads) = head_backward(
            lm,
            lm,
            (h, ints(&targets, [n], ad)),
            Head::new(lm, 1.0, false),
            |r, lp| poison((lp * w.clone().slice([r])).sum().neg().div_scalar(count)),
        )?;
        Ok(Top {
            out: out.loss,
            d_hidden: spread_rows(dh, at.clone(), [b, t]),
            grads,
        })
    };
    trunk_backward(lm, lm, ints(&batch.x, [b, t], ad), checkpoint, top)
}
