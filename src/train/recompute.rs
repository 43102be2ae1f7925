//! Backpropagation that keeps less alive.
//!
//! One identity carries both parts: for `y = f(x)` and a loss L computed from y, the gradient of
//! L in x (and in f's weights) is the gradient of `⟨f(x), g⟩` with `g = ∂L/∂y` held constant. So
//! a graph can be cut at y: the part above backpropagated first from a leaf copy of y, which
//! gives g, and the part below afterwards from that surrogate. The gradients are the plain
//! backward's, summed in a different order.
//!
//! - **The head in chunks** ([`head_backward`]): the unembedding and the token log-probability
//!   run over a few hundred positions at a time, each chunk backpropagated before the next is
//!   computed, so no (positions × vocabulary) logits tensor — 49k–50k columns for GPT-2 and
//!   SmolLM2 — lives longer than its chunk; and only the scored positions (PPO's actions, SFT's
//!   response tokens) reach the head at all.
//! - **The trunk** ([`trunk_backward`]): plainly, one graph through every block; with
//!   checkpointing, a forward without a graph that keeps each block's input (B, T, C), then the
//!   blocks from the top down, each recomputed with its graph and backpropagated at once: one
//!   block's activations alive at a time, for one more forward's work. Dropout is drawn afresh
//!   at every forward, so the recomputed block would not be the one whose output was used:
//!   checkpointing needs dropout 0 (the stages refuse it otherwise).

use crate::model::gpt::positions;
use crate::model::loss::{tempered, token_logprobs};
use crate::model::Lm;
use crate::util::shards::combine;
use anyhow::{anyhow, bail, Result};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::IndexingUpdateOp;
use std::ops::Range;

/// Logits of at most this many elements are alive at once in [`head_backward`] (32 MiB in f32).
const CHUNK_ELEMENTS: usize = 1 << 23;

/// How [`head_backward`] reads the unembedding.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    /// Log-probabilities are of softmax(logits / temperature).
    pub temperature: f32,
    /// Whether to measure each position's entropy.
    pub entropy: bool,
    /// Positions per chunk.
    pub rows: usize,
}

impl Head {
    /// Chunks of at most 2²³ logits (32 MiB): 170 positions of a 49k vocabulary.
    pub fn new(lm: &Lm, temperature: f32, entropy: bool) -> Self {
        Self {
            temperature,
            entropy,
            rows: (CHUNK_ELEMENTS / lm.vocab_size().max(1)).max(1),
        }
    }
}

/// What the part above the trunk hands back to [`trunk_backward`].
pub struct Top<R> {
    /// Its own results.
    pub out: R,
    /// The loss's gradient in the trunk's output, (B, T, C), without a graph.
    pub d_hidden: Tensor<3>,
    /// The gradients of the weights it used itself (a head, the unembedding).
    pub grads: GradientsParams,
}

/// Runs the trunk of `lm` (a part of `owner`, whose parameters the gradients are collected for)
/// on rows `idx` starting at position 0, hands its final hidden states to `top` as a leaf, and
/// backpropagates `top`'s loss through the trunk, recomputing each block in the backward when
/// `checkpoint`. Returns `top`'s results and the gradients of everything.
/// # Shapes
/// - idx: (B, T) on an autodiff device; `top` gets (B, T, C) and returns its gradient (B, T, C)
pub fn trunk_backward<M: Module, R>(
    owner: &M,
    lm: &Lm,
    idx: Tensor<2, Int>,
    checkpoint: bool,
    top: impl FnOnce(Tensor<3>) -> Result<Top<R>>,
) -> Result<(R, GradientsParams)> {
    let [b, t] = idx.dims();
    let pos = positions(b, t, 0, &idx.device());
    if !checkpoint {
        let hidden = lm.hidden(idx, pos, None); // (B, T, C)
        let top = top(hidden.clone().detach().require_grad())?;
        let grads = (hidden * top.d_hidden).sum().backward();
        let below = GradientsParams::from_grads(grads, owner);
        return Ok((
            top.out,
            combine(owner, vec![(top.grads, 1.0), (below, 1.0)]),
        ));
    }
    if lm.has_dropout() {
        bail!(
            "activation checkpointing needs dropout 0 (the model's and the adapters'): a \
             recomputed block would draw other masks than the forward used"
        );
    }
    // the forward without a graph, keeping what each block reads
    let inner = lm.valid();
    let (idx_in, pos_in) = (idx.clone().inner(), pos.clone().inner());
    let mut x = inner.embed(idx_in, pos_in.clone());
    let mut inputs = Vec::with_capacity(lm.n_blocks() + 1);
    for i in 0..lm.n_blocks() {
        inputs.push(x.clone());
        x = inner.block(i, x, pos_in.clone());
    }
    inputs.push(x.clone()); // the final norm's input
    let top = top(Tensor::from_inner(inner.final_norm(x)).require_grad())?;
    let mut g = top.d_hidden;
    let mut parts = vec![(top.grads, 1.0)];
    // from the top down: the final norm, then every block recomputed with its graph
    for i in (0..=lm.n_blocks()).rev() {
        let x = inputs
            .pop()
            .ok_or_else(|| anyhow!("recompute: block {i}'s input is missing"))?;
        let leaf = Tensor::from_inner(x).require_grad();
        let y = if i == lm.n_blocks() {
            lm.final_norm(leaf.clone())
        } else {
            lm.block(i, leaf.clone(), pos.clone())
        };
        let grads = (y * g).sum().backward();
        g = Tensor::from_inner(
            leaf.grad(&grads)
                .ok_or_else(|| anyhow!("recompute: no gradient reached block {i}'s input"))?,
        );
        parts.push((GradientsParams::from_grads(grads, owner), 1.0));
    }
    // the embeddings (frozen under LoRA: then nothing below the first block trains)
    let below = (lm.embed(idx, pos) * g).sum();
    if below.is_tracked() {
        parts.push((GradientsParams::from_grads(below.backward(), owner), 1.0));
    }
    Ok((top.out, combine(owner, parts)))
}

/// What [`head_backward`] measured, without graphs.
pub struct HeadOut {
    /// log π(target) at every scored position, (N,).
    pub logp: Tensor<1>,
    /// The entropy (nats) of every scored position's distribution, (N,) (zeros unless asked).
    pub entropy: Tensor<1>,
    /// Σ over chunks of `loss_of`, (1,).
    pub loss: Tensor<1>,
}

/// The unembedding of `lm` and the log-probability of each target at `head.temperature`, one
/// chunk of `head.rows` positions at a time, each chunk's share of the loss
/// (`loss_of(rows, log-probabilities)`, a scalar) backpropagated before the next chunk is
/// computed. Returns what it measured, the loss's gradient in `hidden`, and the gradients of
/// the weights the unembedding used (collected for `owner`).
/// # Shapes
/// - hidden: (N, C) without a graph; targets: (N,) on the same autodiff device
/// - returns d hidden (N, C)
pub fn head_backward<M: Module>(
    owner: &M,
    lm: &Lm,
    (hidden, targets): (Tensor<2>, Tensor<1, Int>),
    head: Head,
    mut loss_of: impl FnMut(Range<usize>, Tensor<1>) -> Tensor<1>,
) -> Result<(HeadOut, Tensor<2>, GradientsParams)> {
    let [n, c] = hidden.dims();
    let rows = head.rows.max(1);
    let (mut logp, mut ent, mut dh, mut losses) = (vec![], vec![], vec![], vec![]);
    let mut grads: Option<GradientsParams> = None;
    for start in (0..n).step_by(rows) {
        let r = start..(start + rows).min(n);
        let m = r.len();
        // (m, C) → logits (1, m, V)
        let h = hidden.clone().slice(r.clone()).detach().require_grad();
        let logits = tempered(lm.logits(h.clone().reshape([1, m, c])), head.temperature);
        if head.entropy {
            ent.push(row_entropy(logits.clone().detach()).reshape([m]));
        }
        let lp = token_logprobs(logits, targets.clone().slice(r.clone()).reshape([1, m]));
        let lp = lp.reshape([m]);
        logp.push(lp.clone().detach());
        let loss = loss_of(r.clone(), lp);
        losses.push(loss.clone().detach());
        let g = loss.backward();
        dh.push(Tensor::from_inner(h.grad(&g).ok_or_else(|| {
            anyhow!("chunked head: no gradient reached the hidden states")
        })?));
        let here = GradientsParams::from_grads(g, owner);
        grads = Some(match grads.take() {
            Some(acc) => combine(owner, vec![(acc, 1.0), (here, 1.0)]),
            None => here,
        });
    }
    let device = hidden.device();
    let cat1 = |v: Vec<Tensor<1>>| {
        if v.is_empty() {
            Tensor::zeros([n], &device)
        } else {
            Tensor::cat(v, 0)
        }
    };
    let loss = match losses.len() {
        0 => Tensor::zeros([1], &device),
        _ => Tensor::cat(losses, 0).sum(),
    };
    let out = HeadOut {
        logp: cat1(logp),
        entropy: cat1(ent),
        loss,
    };
    let dh = if dh.is_empty() {
        Tensor::zeros([n, c], &device)
    } else {
        Tensor::cat(dh, 0)
    };
    Ok((out, dh, grads.unwrap_or_default()))
}

/// Entropy of each position's distribution. logits (B, T, V) → (B·T,)
fn row_entropy(logits: Tensor<3>) -> Tensor<1> {
    let [b, t, _] = logits.dims();
    let lp = log_softmax(logits, 2); // (B, T, V)
    (lp.clone().exp() * lp).sum_dim(2).reshape([b * t]).neg()
}

/// The rows `at` of a (B, T, C) grid spread into zeros elsewhere: a gradient in the scored
/// positions' hidden states as one in all of them. d (N, C), at (N,) → (B, T, C)
pub fn spread_rows(d: Tensor<2>, at: Tensor<1, Int>, [b, t]: [usize; 2]) -> Tensor<3> {
    let c = d.dims()[1];
    Tensor::<2>::zeros([b * t, c], &d.device())
        .select_assign(0, at, d, IndexingUpdateOp::Add)
        .reshape([b, t, c])
}

/// The rows `at` of a (B, T, C) grid. h (B, T, C), at (N,) → (N, C)
pub fn gather_rows(h: Tensor<3>, at: Tensor<1, Int>) -> Tensor<2> {
    let [b, t, c] = h.dims();
    h.reshape([b * t, c]).select(0, at)
}
