//! Summed log-probabilities of each sequence's response tokens, in one forward and
//! differentiable: DPO's `log π(y|x) = Σ_t log π(y_t | x, y_<t)` (and its reference's, computed
//! the same way without gradients, so that a policy equal to its reference has log-ratio 0).
//!
//! Logits are computed only at the positions that predict a response token: the unembedding
//! and log-softmax cost about a third of a small model's work per position, and prompt
//! positions need neither. Sequences are right-padded; with causal attention the padding after a
//! sequence cannot change what the model computes for it.

use super::gpt::positions;
use super::loss::token_logprobs;
use super::Lm;
use crate::util::tensors::{floats, ints};
use burn::prelude::*;

/// Where the scored tokens of a batch are: flat input positions, their targets, and which row
/// each belongs to (as a (B, N) 0/1 matrix that sums them per row).
struct Scored {
    at: Vec<i64>,
    targets: Vec<i64>,
    rows: Vec<f32>,
}

/// Input position j of row r predicts `seq[j + 1]`; it is scored when `j + 1 ≥ start`.
fn scored(seqs: &[&[u32]], starts: &[usize], t: usize) -> Scored {
    let (mut at, mut targets, mut row_of) = (Vec::new(), Vec::new(), Vec::new());
    for (r, (s, &start)) in seqs.iter().zip(starts).enumerate() {
        for j in start.max(1) - 1..s.len().saturating_sub(1) {
            at.push((r * t + j) as i64);
            targets.push(i64::from(s[j + 1]));
            row_of.push(r);
        }
    }
    let n = at.len();
    let mut rows = vec![0.0; seqs.len() * n];
    for (i, &r) in row_of.iter().enumerate() {
        rows[r * n + i] = 1.0;
    }
    Scored { at, targets, rows }
}

/// `Σ_{j ≥ starts[r]} log p(seqs[r][j] | seqs[r][..j])` for every row r: the log-probability of
/// each sequence's tokens from `starts[r]` on (a response and its closing `<|endoftext|>`),
/// given everything before. Every start must be ≥ 1 (the first token has no prediction).
/// # Shapes
/// - seqs: B sequences of at most `n_ctx + 1` tokens; starts: B indices
/// - returns (B,), with gradients when `device` is an autodiff device
pub fn response_logprobs(
    model: &Lm,
    seqs: &[&[u32]],
    starts: &[usize],
    pad: u32,
    device: &Device,
) -> Tensor<1> {
    let b = seqs.len();
    // inputs are all tokens but each sequence's last: T = longest − 1
    let t = seqs.iter().map(|s| s.len()).max().unwrap_or(1).max(2) - 1;
    let mut x = vec![i64::from(pad); b * t];
    for (r, s) in seqs.iter().enumerate() {
        for (j, &tok) in s.iter().take(t).enumerate() {
            x[r * t + j] = i64::from(tok);
        }
    }
    let sc = scored(seqs, starts, t);
    let n = sc.at.len();
    if n == 0 {
        return Tensor::zeros([b], device);
    }
    let lp = logprobs_at(model, &x, (b, t), (&sc.at, &sc.targets), device); // (1, N)
    floats(&sc.rows, [b, n], device)
        .matmul(lp.reshape([n, 1])) // (B, 1): Σ over each row's scored tokens
        .reshape([b])
}

/// `log p(targets[i] | inputs up to flat position at[i])` of a right-padded (B, T) batch of
/// inputs `x`, with logits computed only at the N positions `at` (DPO's response log-probs,
/// `rlhf eval`'s sequence scoring). `at` must not be empty.
/// # Shapes
/// - x: B·T token ids; at, targets: N each
/// - returns (1, N)
pub fn logprobs_at(
    model: &Lm,
    x: &[i64],
    (b, t): (usize, usize),
    (at, targets): (&[i64], &[i64]),
    device: &Device,
) -> Tensor<2> {
    let n = at.len();
    let h = model.hidden(ints(x, [b, t], device), positions(b, t, 0, device), None); // (B, T, C)
    let c = h.dims()[2];
    let h = h.reshape([b * t, c]).select(0, ints(at, [n], device)); // (N, C)
    let logits = model.logits(h.reshape([1, n, c])); // (1, N, V)
    token_logprobs(logits, ints(targets, [1, n], device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scored_positions_start_at_the_response() {
        // row 0: [5, 6, 7, 8] from index 2 → inputs 1, 2 predict 7, 8; row 1: [1, 2] from 1
        let (a, b) = ([5u32, 6, 7, 8], [1u32, 2]);
        let s = scored(&[&a, &b], &[2, 1], 3);
        assert_eq!(s.at, vec![1, 2, 3]);
        assert_eq!(s.targets, vec![7, 8, 2]);
        assert_eq!(s.rows, vec![1.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    }
}
