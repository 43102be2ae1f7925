//! Language-model measurements for evaluation: summed log-probabilities of scored tokens after a
//! context (for KL between two models and for fluency under the pretrained model), and held-out
//! perplexity on evenly spaced windows of a text.
//!
//! Sequences are right-padded in batches; with causal attention padding after a sequence cannot
//! change what the model computes for it, so a sequence scores the same alone or in a batch.

use crate::model::logprob::logprobs_at;
use crate::model::Lm;
use crate::util::tensors::to_vec;
use anyhow::{bail, Result};
use burn::prelude::*;

/// A sequence to score: `target` tokens are scored, each conditioned on everything before it
/// (`context` first, which must not be empty when `target` is not).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredSeq {
    pub context: Vec<u32>,
    pub target: Vec<u32>,
}

/// Sum of log-probabilities of each sequence's target tokens and how many were scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeqLogprob {
    pub sum: f64,
    pub tokens: usize,
}

/// Cuts a sequence to the model's context: the last `n_ctx + 1` tokens are kept (inputs are all
/// but the last); the context is cut first. Returns (tokens, index of the first target token).
fn fit(s: &ScoredSeq, n_ctx: usize) -> (Vec<u32>, usize) {
    let mut full = s.context.clone();
    full.extend_from_slice(&s.target);
    let drop = full.len().saturating_sub(n_ctx + 1);
    let first_target = s.context.len().saturating_sub(drop).max(1);
    (full[drop..].to_vec(), first_target)
}

/// Scores `seqs` under `model`, `batch` sequences per forward. Logits are computed only at the
/// positions that predict a scored token. → one [`SeqLogprob`] per sequence
pub fn sequence_logprobs(
    model: &Lm,
    seqs: &[ScoredSeq],
    batch: usize,
    pad: u32,
    device: &Device,
) -> Result<Vec<SeqLogprob>> {
    let n_ctx = model.n_ctx();
    let mut out = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(batch.max(1)) {
        let fitted: Vec<(Vec<u32>, usize)> = chunk.iter().map(|s| fit(s, n_ctx)).collect();
        let t = fitted
            .iter()
            .map(|(f, _)| f.len().saturating_sub(1))
            .max()
            .unwrap_or(0);
        let b = fitted.len();
        // input position j of row r predicts f[j + 1]; scored when j + 1 ≥ first target
        let (mut x, mut rows, mut at, mut targets) =
            (vec![pad as i64; b * t], Vec::new(), Vec::new(), Vec::new());
        for (r, (f, first)) in fitted.iter().enumerate() {
            for j in 0..f.len().saturating_sub(1) {
                x[r * t + j] = f[j] as i64;
                if j + 1 >= *first {
                    rows.push(r);
                    at.push((r * t + j) as i64);
                    targets.push(f[j + 1] as i64);
                }
            }
        }
        let mut sums = vec![
            SeqLogprob {
                sum: 0.0,
                tokens: 0
            };
            b
        ];
        if !at.is_empty() {
            let lp = to_vec(logprobs_at(model, &x, (b, t), (&at, &targets), device))?; // (1, N)
            for (&r, &v) in rows.iter().zip(&lp) {
                if !v.is_finite() {
                    bail!("non-finite log-probability while scoring sequence {r} of a batch");
                }
                sums[r].sum += v as f64;
                sums[r].tokens += 1;
            }
        }
        out.extend(sums);
    }
    Ok(out)
}

/// `n` windows of `len` tokens spread evenly over `stream` (the first at its start, the last at
/// its end; they overlap only when the stream is shorter than `n · len`).
pub fn spaced_windows(stream: &[u32], len: usize, n: usize) -> Result<Vec<Vec<u32>>> {
    if stream.len() < len || len < 2 {
        bail!(
            "the held-out text has {} tokens, fewer than one window of {len}",
            stream.len()
        );
    }
    let span = stream.len() - len;
    Ok((0..n)
        .map(|i| {
            let s = if n > 1 { i * span / (n - 1) } else { 0 };
            stream[s..s + len].to_vec()
        })
        .collect())
}

/// Perplexity of `model` on `windows`: every token but a window's first is predicted from those
/// before it in the window; exp of the mean negative log-likelihood over all predicted tokens.
pub fn windows_perplexity(
    model: &Lm,
    windows: &[Vec<u32>],
    batch: usize,
    device: &Device,
) -> Result<f64> {
    let seqs: Vec<ScoredSeq> = windows
        .iter()
        .map(|w| ScoredSeq {
            context: w[..1].to_vec(),
            target: w[1..].to_vec(),
        })
        .collect();
    let lps = sequence_logprobs(model, &seqs, batch, 0, device)?;
    let (sum, n) = lps
        .iter()
        .fold((0.0, 0), |(s, n), l| (s + l.sum, n + l.tokens));
    super::guards::perplexity(-sum, n)
        .ok_or_else(|| anyhow::anyhow!("no held-out tokens to measure perplexity on"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_the_context_first() {
        let s = ScoredSeq {
            context: vec![1, 2, 3, 4],
            target: vec![5, 6],
        };
        assert_eq!(fit(&s, 10), (vec![1, 2, 3, 4, 5, 6], 4));
        assert_eq!(fit(&s, 3), (vec![3, 4, 5, 6], 2));
        // a target longer than the context window keeps its end, the first kept token unscored
        assert_eq!(fit(&s, 1), (vec![5, 6], 1));
    }

    #[test]
    fn windows_are_spread_evenly() {
        let s: Vec<u32> = (0..10).collect();
        let w = spaced_windows(&s, 4, 3).unwrap();
        assert_eq!(
            w,
            vec![vec![0, 1, 2, 3], vec![3, 4, 5, 6], vec![6, 7, 8, 9]]
        );
        assert!(spaced_windows(&s, 11, 1).is_err());
    }
}
