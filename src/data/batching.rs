//! Turning tokens into training batches.
//!
//! - Pretraining: one long token stream; a batch is B random windows of T+1 tokens (nanoGPT),
//!   so the data position is fully described by the RNG state.
//! - SFT: each example is a conversation in the template, `prompt + response + <|endoftext|>` for
//!   one turn; batches are right-padded and carry a weight per target position: 1 on the tokens
//!   of every assistant turn (and the `<|endoftext|>` closing it), 0 on user and system text and
//!   padding.
//! - Rankings (the reward model, DPO): a batch is prompts drawn with replacement, each with all
//!   of its responses.

use crate::data::chat_format;
use crate::data::conversation::Message;
use crate::data::formats::SftRecord;
use crate::data::template::pieces;
use crate::data::tokenizer::Tok;
use crate::util::rng::Rng;
use anyhow::{bail, Result};

/// Token ids of `x` (inputs), `y` (targets) and per-target weights, row-major (B, T).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub b: usize,
    pub t: usize,
    pub x: Vec<i64>,
    pub y: Vec<i64>,
    pub w: Vec<f32>,
}

impl Batch {
    /// Number of target positions with weight > 0.
    pub fn n_targets(&self) -> usize {
        self.w.iter().filter(|&&w| w > 0.0).count()
    }

    /// Sum of the target weights (the denominator of the masked mean loss).
    pub fn weight_sum(&self) -> f64 {
        self.w.iter().map(|&w| w as f64).sum()
    }

    /// Rows `r` of the batch (a micro-batch).
    pub fn rows(&self, r: std::ops::Range<usize>) -> Batch {
        let (a, b) = (r.start * self.t, r.end * self.t);
        Batch {
            b: r.len(),
            t: self.t,
            x: self.x[a..b].to_vec(),
            y: self.y[a..b].to_vec(),
            w: self.w[a..b].to_vec(),
        }
    }
}

/// `b` items drawn uniformly with replacement (at most as many as there are items), so the data
/// position is the RNG state alone, as for the windows below.
pub fn draw_with_replacement<'a, T>(items: &'a [T], b: usize, rng: &mut Rng) -> Vec<&'a T> {
    let n = items.len();
    (0..b.min(n)).map(|_| &items[rng.below(n)]).collect()
}

/// A batch of `b` random windows of `t + 1` tokens from `stream`.
pub fn random_windows(stream: &[u32], b: usize, t: usize, rng: &mut Rng) -> Result<Batch> {
    if stream.len() < t + 2 {
        bail!(
            "token stream of {} tokens is shorter than one window of {} tokens",
            stream.len(),
            t + 1
        );
    }
    let mut batch = Batch {
        b,
        t,
        x: Vec::with_capacity(b * t),
        y: Vec::with_capacity(b * t),
        w: vec![1.0; b * t],
    };
    for _ in 0..b {
        let start = rng.below(stream.len() - t - 1);
        batch
            .x
            .extend(stream[start..start + t].iter().map(|&v| v as i64));
        batch
            .y
            .extend(stream[start + 1..start + t + 1].iter().map(|&v| v as i64));
    }
    Ok(batch)
}

/// Consecutive non-overlapping windows covering `stream` (for held-out loss), at most `max`
/// batches.
pub fn sequential_windows(stream: &[u32], b: usize, t: usize, max: usize) -> Vec<Batch> {
    let n_win = stream.len().saturating_sub(1) / t;
    let mut out = Vec::new();
    let mut w = 0;
    while w + b <= n_win && out.len() < max {
        let mut batch = Batch {
            b,
            t,
            x: Vec::new(),
            y: Vec::new(),
            w: vec![1.0; b * t],
        };
        for k in 0..b {
            let s = (w + k) * t;
            batch.x.extend(stream[s..s + t].iter().map(|&v| v as i64));
            batch
                .y
                .extend(stream[s + 1..s + t + 1].iter().map(|&v| v as i64));
        }
        out.push(batch);
        w += b;
    }
    out
}

/// One tokenized demonstration: `target[i]` says whether token `i` is an assistant's (a
/// response token or the `<|endoftext|>` closing one), which the loss learns to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct SftExample {
    pub tokens: Vec<u32>,
    pub target: Vec<bool>,
}

impl SftExample {
    /// A prompt of `n_prompt` tokens, then the response's.
    pub fn single(tokens: Vec<u32>, n_prompt: usize) -> Self {
        let target = (0..tokens.len()).map(|i| i >= n_prompt).collect();
        Self { tokens, target }
    }
}

/// Tokenizes demonstrations with the template, each turn on its own (a conversation's turns are
/// concatenated). An example longer than `n_ctx + 1` tokens keeps at most `n_ctx / 2` tokens of
/// its last response first and then the end of what precedes it (cut from the left: the oldest
/// turns go first); the number of examples cut is returned so the caller can report it.
pub fn tokenize_sft(
    tok: &Tok,
    records: &[SftRecord],
    n_ctx: usize,
) -> Result<(Vec<SftExample>, usize)> {
    let mut out = Vec::with_capacity(records.len());
    let mut cut = 0;
    let max_len = n_ctx + 1;
    for r in records {
        let (mut tokens, mut target, last) = demonstration_tokens(tok, &r.messages)?;
        if tokens.len() > max_len {
            cut += 1;
            let (p, resp) = (last, tokens.len() - last);
            let resp_keep = resp.min(max_len / 2).max(max_len.saturating_sub(p));
            let end = p + resp_keep.min(max_len - 1);
            let start = end - max_len.min(end);
            tokens = tokens[start..end].to_vec();
            target = target[start..end].to_vec();
        }
        out.push(SftExample { tokens, target });
    }
    Ok((out, cut))
}

/// A demonstration's tokens, which are targets, and where its last piece (the last assistant
/// turn; with a chat template, its first token) starts.
fn demonstration_tokens(tok: &Tok, messages: &[Message]) -> Result<(Vec<u32>, Vec<bool>, usize)> {
    if let Some(c) = &tok.chat {
        let (tokens, target) = chat_format::demonstration(&c.template, &tok.inner, messages)?;
        // the start of the last run of targets
        let end = target.iter().rposition(|&t| t).map_or(0, |i| i + 1);
        let last = target[..end].iter().rposition(|&t| !t).map_or(0, |i| i + 1);
        return Ok((tokens, target, last));
    }
    let (mut tokens, mut target) = (Vec::new(), Vec::new());
    let mut last = 0; // where the last piece starts
    for piece in pieces(messages) {
        let mut ids = tok.encode(&piece.text)?;
        if piece.assistant {
            ids.push(tok.eot);
        }
        last = tokens.len();
        target.extend(std::iter::repeat_n(piece.assistant, ids.len()));
        tokens.extend(ids);
    }
    Ok((tokens, target, last))
}

/// Right-pads examples into a batch; weights are 1 exactly on targets that are response tokens.
pub fn sft_batch(examples: &[&SftExample], pad_id: u32) -> Batch {
    let t = examples
        .iter()
        .map(|e| e.tokens.len() - 1)
        .max()
        .unwrap_or(1)
        .max(1);
    let b = examples.len();
    let mut batch = Batch {
        b,
        t,
        x: vec![pad_id as i64; b * t],
        y: vec![pad_id as i64; b * t],
        w: vec![0.0; b * t],
    };
    for (r, e) in examples.iter().enumerate() {
        for j in 0..e.tokens.len() - 1 {
            batch.x[r * t + j] = e.tokens[j] as i64;
            batch.y[r * t + j] = e.tokens[j + 1] as i64;
            // target j predicts tokens[j + 1]: counted when that is an assistant's token
            if e.target[j + 1] {
                batch.w[r * t + j] = 1.0;
            }
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sft_weights_cover_response_only() {
        let e = SftExample::single(vec![10, 11, 12, 20, 21, 0], 3);
        let b = sft_batch(&[&e], 0);
        assert_eq!(b.t, 5);
        assert_eq!(b.x, vec![10, 11, 12, 20, 21]);
        assert_eq!(b.y, vec![11, 12, 20, 21, 0]);
        assert_eq!(b.w, vec![0.0, 0.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn prompts_are_drawn_with_replacement_one_rng_draw_each() {
        let items: Vec<u32> = (0..5).collect();
        let mut rng = Rng::new(11);
        let got: Vec<u32> = draw_with_replacement(&items, 40, &mut rng)
            .into_iter()
            .copied()
            .collect();
        // at most as many as there are items, each the next `below(n)` of the same stream
        let mut want_rng = Rng::new(11);
        let want: Vec<u32> = (0..5).map(|_| want_rng.below(5) as u32).collect();
        assert_eq!(got, want);
        // the stream is where it would be after those draws (the data position)
        assert_eq!(rng.below(1000), want_rng.below(1000));
        let drawn = draw_with_replacement(&items, 4, &mut Rng::new(2));
        assert_eq!(drawn.len(), 4);
        // with replacement: over many draws some item comes twice
        let fifty: Vec<u32> = (0..50).collect();
        let many = draw_with_replacement(&fifty, 50, &mut Rng::new(4));
        let distinct: std::collections::BTreeSet<u32> = many.iter().map(|&&x| x).collect();
        assert!(distinct.len() < 50, "{distinct:?}");
    }

    #[test]
    fn windows_are_shifted_by_one() {
        let s: Vec<u32> = (0..100).collect();
        let mut rng = Rng::new(3);
        let b = random_windows(&s, 2, 8, &mut rng).unwrap();
        for i in 0..16 {
            assert_eq!(b.y[i], b.x[i] + 1);
        }
        let v = sequential_windows(&s, 2, 8, 100);
        assert_eq!(v.len(), 6);
        assert_eq!(v[1].x[0], 16);
    }
}
