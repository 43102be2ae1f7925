//! The fused kernels against their reference twins on one device, values and gradients: what
//! `rlhf doctor` reports and what a GPU run of `rlhf pipeline` checks before it trains, so an
//! adapter or driver that computes wrong numbers stops a run at once instead of training a
//! broken model. The tests run the same checks on lavapipe (`tests/commands/doctor.rs`).

use super::attention::{attention_reference, causal_attention};
use super::dropout::{self as drop, dropout, dropout_reference, MaskKey, Segment};
use super::ranking_loss::{ranking_loss, ranking_loss_reference};
pub use crate::util::compare::rel_err;
use crate::util::rng::Rng;
use crate::util::tensors::{floats, to_vec};
use anyhow::Result;
use burn::prelude::*;

/// Largest relative error allowed between a kernel and its twin: f32 sums in another order
/// differ by a few ulps per term (≈ 1e-7 relative) times the terms summed (up to a few hundred
/// here), so 1e-4 leaves a margin of ten while a wrong index or a missing mask is off by O(1).
pub const TOLERANCE: f32 = 1e-4;

/// One comparison of a kernel with its reference twin.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was compared (kernel, shape).
    pub name: String,
    /// Largest |kernel − reference| over the values and every gradient, relative to the largest
    /// |reference| of the same output; NaN when the kernel produced a non-finite number.
    pub max_rel: f32,
    /// False when the kernel was never launched (the reference ran instead).
    pub launched: bool,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.launched && self.max_rel <= TOLERANCE
    }
}

fn randn(n: usize, rng: &mut Rng) -> Vec<f32> {
    // a sum of four uniforms: roughly normal, sd ≈ 1
    (0..n)
        .map(|_| {
            (0..4)
                .map(|_| rng.below(1 << 20) as f32 / (1 << 20) as f32 - 0.5)
                .sum::<f32>()
                * 1.7
        })
        .collect()
}

/// The worst [`rel_err`] of the kernel's outputs (`got`) against the twin's (`want`).
fn worst_rel(got: &[Vec<f32>], want: &[Vec<f32>]) -> f32 {
    crate::util::compare::worst(got.iter().zip(want).map(|(a, b)| rel_err(a, b)))
}

/// (B, nh, nkv key/value heads, T, hs, t_past, right padding of the last row's keys)
type AttnCase = (usize, usize, usize, usize, usize, usize, usize);

/// Attention shapes: the presets' head sizes, a ragged length, a padded batch, grouped-query
/// attention (6 query heads over 2 key/value heads, as the Llama family has) and a KV-cache
/// decode step (one query past 20 cached keys).
const ATTN_CASES: [AttnCase; 4] = [
    (2, 4, 4, 37, 16, 0, 0),
    (2, 4, 4, 64, 32, 0, 9),
    (1, 6, 2, 50, 64, 0, 0),
    (3, 2, 2, 1, 64, 20, 4),
];

/// O, dQ, dK, dV of `Σ O ∘ W` by the kernel path (`reference` false) or the twin.
fn attention_run(c: AttnCase, device: &Device, reference: bool) -> Result<Vec<Vec<f32>>> {
    let (b, nh, nkv, t, hs, t_past, padded) = c;
    let tk = t_past + t;
    let ad = device.clone().autodiff();
    let mut rng = Rng::new(7);
    let (sq, skv) = ([b, nh, t, hs], [b, nkv, tk, hs]);
    let q = floats(&randn(b * nh * t * hs, &mut rng), sq, &ad).require_grad();
    let k = floats(&randn(b * nkv * tk * hs, &mut rng), skv, &ad).require_grad();
    let v = floats(&randn(b * nkv * tk * hs, &mut rng), skv, &ad).require_grad();
    let w = floats(&randn(b * nh * t * hs, &mut rng), sq, &ad);
    let pad: Vec<bool> = (0..b * tk)
        .map(|i| i / tk == b - 1 && i % tk >= tk - padded)
        .collect();
    let pad =
        (padded > 0).then(|| Tensor::<2, Bool>::from_data(TensorData::new(pad, [b, tk]), &ad));
    let o = if reference {
        attention_reference(q.clone(), k.clone(), v.clone(), pad, t_past)
    } else {
        causal_attention(q.clone(), k.clone(), v.clone(), pad, t_past)
    };
    let g = (o.clone() * w).sum().backward();
    let grad = |x: &Tensor<4>| x.grad(&g).map(to_vec).transpose();
    Ok(vec![
        to_vec(o)?,
        grad(&q)?.unwrap_or_default(),
        grad(&k)?.unwrap_or_default(),
        grad(&v)?.unwrap_or_default(),
    ])
}

fn attention_check(c: AttnCase, device: &Device) -> Result<Check> {
    let before = super::attention::wgsl_launches();
    let got = attention_run(c, device, false)?;
    let launched = super::attention::wgsl_launches() > before;
    let want = attention_run(c, device, true)?;
    let (b, nh, nkv, t, hs, t_past, padded) = c;
    let kv = if nkv < nh {
        format!(" nkv{nkv}")
    } else {
        String::new()
    };
    let mut name = format!("attention fwd+bwd B{b} nh{nh}{kv} T{t} hs{hs}");
    if t_past > 0 {
        name += &format!(" t_past {t_past}");
    }
    if padded > 0 {
        name += &format!(" {padded} padded keys");
    }
    Ok(Check {
        name,
        max_rel: worst_rel(&got, &want),
        launched,
    })
}

/// Loss and dL/dr of the ranking loss by the kernel path or the twin.
fn rank_run(r: &[f32], ks: &[usize], device: &Device, reference: bool) -> Result<Vec<Vec<f32>>> {
    let ad = device.clone().autodiff();
    let x = floats(r, [r.len()], &ad).require_grad();
    let loss = if reference {
        ranking_loss_reference(x.clone(), ks)?
    } else {
        ranking_loss(x.clone(), ks)?
    };
    let g = loss.clone().backward();
    let dx = x.grad(&g).map(to_vec).transpose()?.unwrap_or_default();
    Ok(vec![to_vec(loss)?, dx])
}

fn rank_check(device: &Device) -> Result<Check> {
    let ks = [2, 3, 9, 4, 2, 7];
    let n: usize = ks.iter().sum();
    let r = randn(n, &mut Rng::new(11));
    let before = super::ranking_loss::wgsl_launches();
    let got = rank_run(&r, &ks, device, false)?;
    let launched = super::ranking_loss::wgsl_launches() > before;
    let want = rank_run(&r, &ks, device, true)?;
    Ok(Check {
        name: format!("ranking loss + dL/dr, K = {ks:?}"),
        max_rel: worst_rel(&got, &want),
        launched,
    })
}

/// Dropout's output and dx for the upstream gradient `dy`, by the kernel or the twin.
fn dropout_run(
    x: &[f32],
    dy: &[f32],
    key: &MaskKey,
    device: &Device,
    reference: bool,
) -> Result<Vec<Vec<f32>>> {
    let ad = device.clone().autodiff();
    let rows = key.segments.last().map_or(0, |s| s.row_end);
    let shape = [rows, key.per_row];
    let xt = floats(x, shape, &ad).require_grad();
    let y = if reference {
        dropout_reference(xt.clone(), key)
    } else {
        dropout(xt.clone(), key)
    };
    let g = (y.clone() * floats(dy, shape, &ad)).sum().backward();
    let dx = xt.grad(&g).map(to_vec).transpose()?.unwrap_or_default();
    Ok(vec![to_vec(y)?, dx])
}

fn dropout_check(device: &Device) -> Result<Check> {
    // two micro-batches, the second starting deep in its stream (as at a later dropout site)
    let key = MaskKey {
        keep: 0.9,
        per_row: 301,
        segments: vec![
            Segment {
                row_end: 2,
                width: 301,
                seed: 0x1234_5678_9ABC_DEF0,
                start: 0,
            },
            Segment {
                row_end: 5,
                width: 250,
                seed: 42,
                start: (1 << 33) + 7,
            },
        ],
    };
    let mut rng = Rng::new(12);
    let (x, dy) = (randn(key.len(), &mut rng), randn(key.len(), &mut rng));
    let before = drop::wgsl_launches();
    let got = dropout_run(&x, &dy, &key, device, false)?;
    let launched = drop::wgsl_launches() > before;
    let want = dropout_run(&x, &dy, &key, device, true)?;
    Ok(Check {
        name: format!("dropout + dx, p = 0.1, {} elements", key.len()),
        max_rel: worst_rel(&got, &want),
        launched,
    })
}

/// Every check on `device` (a wgpu device: on the CPU backend the kernels never launch).
pub fn run_checks(device: &Device) -> Result<Vec<Check>> {
    run_checks_each(device, |_| {})
}

/// [`run_checks`], handing each check to `each` as soon as it is done (the first launch of a
/// kernel compiles it, which takes seconds per kernel on a software driver, so a caller can show
/// progress).
pub fn run_checks_each(device: &Device, mut each: impl FnMut(&Check)) -> Result<Vec<Check>> {
    let mut out = Vec::new();
    let mut push = |c: Check| {
        each(&c);
        out.push(c);
    };
    for c in ATTN_CASES {
        push(attention_check(c, device)?);
    }
    push(rank_check(device)?);
    push(dropout_check(device)?);
    Ok(out)
}
