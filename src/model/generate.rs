//! Batched autoregressive generation with a KV cache.
//!
//! Prompts of different lengths are left-padded to a common length: the padding keys are masked
//! and each row's positions start at 0 on its first real token, so a padded row computes exactly
//! what it would alone. After the prefill, each step feeds one token per row and reuses the
//! cached keys and values (O(T) per step instead of O(T²)). The uncached path recomputes the full
//! sequence each step; it exists as the reference and for `rlhf bench generate`.

use super::gpt::KvCache;
use super::lm::Lm;
use crate::data::pairs::fit_prompt;
use crate::util::rng::Rng;
use crate::util::tensors::{bools, ints, to_vec};
use anyhow::{bail, Context, Result};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// How to pick the next token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleConfig {
    /// Softmax temperature; 0 means greedy (argmax). Default 1.0.
    pub temperature: f32,
    /// Keep only the k most likely tokens; 0 disables. Default 0.
    pub top_k: usize,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches p; 1 disables.
    /// Default 1.0.
    pub top_p: f32,
    /// Maximum number of generated tokens per response. Default 48.
    pub max_new_tokens: usize,
}

impl Default for SampleConfig {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            max_new_tokens: 48,
        }
    }
}

/// A left-padded batch in the middle of decoding.
pub struct Decoder<'a> {
    model: &'a Lm,
    device: Device,
    /// (B, T_so_far) true at padding.
    pad: Vec<Vec<bool>>,
    /// Next absolute position of each row.
    next_pos: Vec<i64>,
    cache: Option<KvCache>,
    /// All tokens so far, padded (for the uncached path).
    tokens: Vec<Vec<u32>>,
    use_cache: bool,
}

impl<'a> Decoder<'a> {
    /// Runs the prompts (each non-empty) and returns the next-token logits, (B, V) on the host.
    pub fn prefill(
        model: &'a Lm,
        prompts: &[Vec<u32>],
        use_cache: bool,
        device: &Device,
    ) -> Result<(Self, Vec<Vec<f32>>)> {
        if prompts.is_empty() || prompts.iter().any(|p| p.is_empty()) {
            bail!("generation needs at least one prompt, each with at least one token");
        }
        let l = prompts.iter().map(|p| p.len()).max().unwrap_or(1);
        let mut pad = Vec::new();
        let mut tokens = Vec::new();
        for p in prompts {
            let n_pad = l - p.len();
            pad.push((0..l).map(|i| i < n_pad).collect::<Vec<_>>());
            let mut row = vec![0u32; n_pad];
            row.extend_from_slice(p);
            tokens.push(row);
        }
        let next_pos = prompts.iter().map(|p| p.len() as i64).collect();
        let mut d = Self {
            model,
            device: device.clone(),
            pad,
            next_pos,
            cache: None,
            tokens,
            use_cache,
        };
        let logits = d.run_full()?;
        Ok((d, logits))
    }

    /// Number of positions so far (padding included).
    pub fn len(&self) -> usize {
        self.pad.first().map(|r| r.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `tokens` (at least one) to a one-row decoder, as a chat's next turn, and returns the
    /// next-token logits (1, V). With the cache only the new tokens run through the model; the
    /// earlier turns' keys and values are reused.
    pub fn extend(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        if self.tokens.len() != 1 || tokens.is_empty() {
            bail!("extending a decoder needs one row and at least one token");
        }
        let n = tokens.len();
        self.tokens[0].extend_from_slice(tokens);
        self.pad[0].extend(std::iter::repeat_n(false, n));
        let from = self.next_pos[0];
        self.next_pos[0] += n as i64;
        if !self.use_cache {
            return self.run_full();
        }
        let idx = tokens.iter().map(|&t| t as i64).collect();
        let pos = (from..from + n as i64).collect();
        let (h, cache) = self.model.forward_hidden(
            int_tensor(idx, [1, n], &self.device),
            int_tensor(pos, [1, n], &self.device),
            None,
            self.cache.take(),
        );
        self.cache = Some(cache);
        last_logits(self.model, h)
    }

    /// Appends one token per row and returns the next-token logits (B, V).
    pub fn step(&mut self, next: &[u32]) -> Result<Vec<Vec<f32>>> {
        for (i, &t) in next.iter().enumerate() {
            self.tokens[i].push(t);
            self.pad[i].push(false);
        }
        if !self.use_cache {
            for p in self.next_pos.iter_mut() {
                *p += 1;
            }
            return self.run_full();
        }
        let b = next.len();
        let idx = int_tensor(
            next.iter().map(|&t| t as i64).collect(),
            [b, 1],
            &self.device,
        );
        let pos = int_tensor(self.next_pos.clone(), [b, 1], &self.device);
        for p in self.next_pos.iter_mut() {
            *p += 1;
        }
        let key_pad = self.key_pad();
        let (h, cache) = self
            .model
            .forward_hidden(idx, pos, key_pad, self.cache.take());
        self.cache = Some(cache);
        last_logits(self.model, h)
    }

    fn key_pad(&self) -> Option<Tensor<2, Bool>> {
        if !self.pad.iter().flatten().any(|&p| p) {
            return None;
        }
        let (b, t) = (self.pad.len(), self.len());
        let flat: Vec<bool> = self.pad.iter().flatten().copied().collect();
        Some(bools(&flat, [b, t], &self.device))
    }

    /// Forward over every position so far; fills the cache.
    fn run_full(&mut self) -> Result<Vec<Vec<f32>>> {
        let (b, t) = (self.tokens.len(), self.len());
        let idx: Vec<i64> = self.tokens.iter().flatten().map(|&x| x as i64).collect();
        let mut pos = Vec::with_capacity(b * t);
        for row in &self.pad {
            let n_pad = row.iter().filter(|&&p| p).count() as i64;
            pos.extend((0..t as i64).map(|i| (i - n_pad).max(0)));
        }
        let (h, cache) = self.model.forward_hidden(
            int_tensor(idx, [b, t], &self.device),
            int_tensor(pos, [b, t], &self.device),
            self.key_pad(),
            None,
        );
        self.cache = Some(cache);
        let [_, t, _] = h.dims();
        last_logits(self.model, h.narrow(1, t - 1, 1))
    }
}

fn int_tensor<const D: usize>(v: Vec<i64>, shape: [usize; D], device: &Device) -> Tensor<D, Int> {
    ints(&v, shape, device)
}

/// Logits of the last position of `h` (B, T, C) as host rows (B, V).
fn last_logits(model: &Lm, h: Tensor<3>) -> Result<Vec<Vec<f32>>> {
    let [b, t, _] = h.dims();
    let logits = model.logits(h.narrow(1, t - 1, 1)); // (B, 1, V)
    let v = logits.dims()[2];
    let flat: Vec<f32> = to_vec(logits).context("reading logits from the device")?;
    Ok(flat.chunks(v).map(|r| r.to_vec()).take(b).collect())
}

/// Picks a token from one row of logits.
pub fn sample_token(logits: &[f32], cfg: &SampleConfig, rng: &mut Rng) -> u32 {
    if cfg.temperature <= 0.0 {
        return argmax(logits) as u32;
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if cfg.top_k > 0 {
        idx.truncate(cfg.top_k);
    }
    let m = logits[idx[0]];
    let mut probs: Vec<f64> = idx
        .iter()
        .map(|&i| (((logits[i] - m) / cfg.temperature) as f64).exp())
        .collect();
    let z: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= z);
    if cfg.top_p < 1.0 {
        let mut cum = 0.0;
        let mut keep = probs.len();
        for (j, p) in probs.iter().enumerate() {
            cum += p;
            if cum >= cfg.top_p as f64 {
                keep = j + 1;
                break;
            }
        }
        probs.truncate(keep);
        let z: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= z);
    }
    let u = rng.next_f64();
    let mut cum = 0.0;
    for (j, p) in probs.iter().enumerate() {
        cum += p;
        if u < cum {
            return idx[j] as u32;
        }
    }
    idx[probs.len() - 1] as u32
}

pub fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in xs.iter().enumerate() {
        if *x > xs[best] {
            best = i;
        }
    }
    best
}

/// Tokens [`generate`] may add after a prompt for a model of context `n_ctx`: `max_new_tokens`,
/// at most `n_ctx − 1`, at least 1.
pub fn response_room(n_ctx: usize, cfg: &SampleConfig) -> usize {
    cfg.max_new_tokens.min(n_ctx.saturating_sub(1)).max(1)
}

/// Prompt tokens kept by [`generate`]: the context less the room for the response (at least 1
/// token); longer prompts are cut from the left.
pub fn prompt_room(n_ctx: usize, cfg: &SampleConfig) -> usize {
    n_ctx - response_room(n_ctx, cfg)
}

/// As [`generate`] with the KV cache, the prompts cut into two halves that each sample from
/// their own RNG drawn from `rng`. On the CPU backend the halves run on parallel threads
/// (`util::shards`: a decode step of a small model is too short for the backend to use both
/// cores); elsewhere they run as one batch whose rows sample from their half's RNG, so the
/// same seed draws the same tokens on every device (up to logits that round differently).
pub fn generate_parallel(
    model: &Lm,
    prompts: &[Vec<u32>],
    cfg: &SampleConfig,
    eot: u32,
    rng: &mut Rng,
    device: &Device,
) -> Result<Vec<Vec<u32>>> {
    if prompts.len() < 2 {
        return generate(model, prompts, cfg, eot, rng, true, device);
    }
    // two or more prompts make exactly two halves
    let seeds = [rng.next_u64(), rng.next_u64()];
    if !crate::util::shards::is_cpu(device) {
        let halves = crate::util::shards::ranges(prompts.len(), 2);
        let stream: Vec<usize> = (0..prompts.len())
            .map(|i| usize::from(!halves[0].contains(&i)))
            .collect();
        let mut rngs = seeds.map(Rng::new);
        return generate_streams(model, prompts, cfg, eot, (&mut rngs, &stream), true, device);
    }
    crate::util::shards::concat_ranges(prompts.len(), 2, device, |i, half| {
        let mut r = Rng::new(seeds[i]);
        generate(model, &prompts[half], cfg, eot, &mut r, true, device)
    })
}

/// Generates a response for each prompt; a response ends at `eot` (not included) or after
/// `max_new_tokens`. Prompts longer than the context minus `max_new_tokens` are cut from the left.
pub fn generate(
    model: &Lm,
    prompts: &[Vec<u32>],
    cfg: &SampleConfig,
    eot: u32,
    rng: &mut Rng,
    use_cache: bool,
    device: &Device,
) -> Result<Vec<Vec<u32>>> {
    let stream = vec![0; prompts.len()];
    let rngs = std::slice::from_mut(rng);
    generate_streams(model, prompts, cfg, eot, (rngs, &stream), use_cache, device)
}

/// [`generate`] with row `i` sampling from `rngs[stream[i]]`: each stream draws for its rows in
/// the order (step, row), as it would generating those rows alone.
fn generate_streams(
    model: &Lm,
    prompts: &[Vec<u32>],
    cfg: &SampleConfig,
    eot: u32,
    (rngs, stream): (&mut [Rng], &[usize]),
    use_cache: bool,
    device: &Device,
) -> Result<Vec<Vec<u32>>> {
    let n_ctx = model.n_ctx();
    let max_new = response_room(n_ctx, cfg);
    // the last of the `max_new` tokens may be the closing one
    let prompts: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| fit_prompt(p, max_new - 1, n_ctx))
        .collect();
    let (mut dec, logits) = Decoder::prefill(model, &prompts, use_cache, device)?;
    sample_rows(&mut dec, logits, max_new, cfg, eot, (rngs, stream))
}

/// Samples up to `max_new` tokens per row of `dec`, starting from its next-token `logits`; a row
/// ends at `eot` (not included). The last token sampled is not fed to `dec`: a caller that goes
/// on (a chat's next turn) feeds it first.
pub fn sample_rows(
    dec: &mut Decoder,
    mut logits: Vec<Vec<f32>>,
    max_new: usize,
    cfg: &SampleConfig,
    eot: u32,
    (rngs, stream): (&mut [Rng], &[usize]),
) -> Result<Vec<Vec<u32>>> {
    let mut out = vec![Vec::new(); logits.len()];
    let mut done = vec![false; logits.len()];
    for step in 0..max_new {
        let next: Vec<u32> = logits
            .iter()
            .zip(done.iter())
            .zip(stream)
            .map(|((row, &d), &s)| {
                if d {
                    eot
                } else {
                    sample_token(row, cfg, &mut rngs[s])
                }
            })
            .collect();
        for (i, &t) in next.iter().enumerate() {
            if !done[i] {
                if t == eot {
                    done[i] = true;
                } else {
                    out[i].push(t);
                }
            }
        }
        if done.iter().all(|&d| d) || step + 1 == max_new {
            break;
        }
        logits = dec.step(&next)?;
    }
    Ok(out)
}
