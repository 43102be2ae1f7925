//! `rlhf bench attention`: the fused WGSL attention vs burn's composed attention (the reference
//! twin), under autodiff, forward + backward, on random (B, nh, T, hs) inputs: time per step,
//! speed ratio, and device memory held at the high-water mark of the step.
//!
//! Memory is what burn's device memory pool reports in use (`memory_pool_usage`), sampled after
//! the forward (saved activations alive) and after the backward, minus what was in use before
//! the step (the inputs). Buffers that live and die inside one pass are not seen, so it is a lower
//! bound on the true peak; it does include everything the forward saves for backward, which is
//! where the composed path's (B, nh, T, T) matrices sit.

use crate::kernels::attention::{causal_attention, kernel_applies};
use crate::kernels::set_kernels_disabled;
use crate::stages::bench::device_mem_mib;
use crate::util::tensors::to_vec;
use anyhow::{bail, Result};
use burn::prelude::*;
use burn::tensor::Distribution;
use std::time::Instant;

/// Settings of one `bench attention` run.
#[derive(Debug, Clone)]
pub struct AttentionBench {
    /// Batch size (default 8).
    pub batch: usize,
    /// Heads (default 4).
    pub heads: usize,
    /// Head sizes to run (default 32 and 64).
    pub head_sizes: Vec<usize>,
    /// Sequence lengths to run (default 128, 256, 512, 1024), cut at `max_t`.
    pub lengths: Vec<usize>,
    /// Timed steps per configuration, after one warm-up step (default 3).
    pub steps: usize,
}

/// One forward + backward; returns (seconds, device MiB above the baseline at the sampled peak).
fn step(shape: [usize; 4], device: &Device, reference: bool) -> Result<(f64, f64)> {
    let ad = device.clone().autodiff();
    let dist = Distribution::Normal(0.0, 1.0);
    let q = Tensor::<4>::random(shape, dist, &ad).require_grad();
    let k = Tensor::<4>::random(shape, dist, &ad).require_grad();
    let v = Tensor::<4>::random(shape, dist, &ad).require_grad();
    device.sync()?;
    let base = device_mem_mib(device).unwrap_or(0.0);
    let t0 = Instant::now();
    set_kernels_disabled(reference);
    let o = causal_attention(q.clone(), k.clone(), v.clone(), None, 0); // (B, nh, T, hs)
    set_kernels_disabled(false);
    let loss = o.sum();
    device.sync()?;
    let after_fwd = device_mem_mib(device).unwrap_or(0.0); // saved activations alive
    let grads = loss.backward();
    let gq = q.grad(&grads);
    let gk = k.grad(&grads);
    let gv = v.grad(&grads);
    device.sync()?;
    let after_bwd = device_mem_mib(device).unwrap_or(0.0);
    let secs = t0.elapsed().as_secs_f64();
    for g in [gq, gk, gv] {
        match g {
            Some(g) => {
                let s = to_vec(g.sum())?;
                if !s.iter().all(|x| x.is_finite()) {
                    bail!("non-finite gradient in the attention bench");
                }
            }
            None => bail!("missing gradient in the attention bench"),
        }
    }
    Ok((secs, after_fwd.max(after_bwd) - base))
}

/// Prints one JSON line per (T, hs) and a Markdown table at the end.
pub fn run(cfg: &AttentionBench, device: &Device, label: &str) -> Result<()> {
    let probe = Tensor::<4>::zeros(
        [1, 1, 1, cfg.head_sizes.first().copied().unwrap_or(32)],
        device,
    );
    if !kernel_applies(&probe) {
        bail!("the fused attention kernel needs a wgpu device (got {label}); use --device wgpu");
    }
    let mut rows = Vec::new();
    for &hs in &cfg.head_sizes {
        for &t in &cfg.lengths {
            let shape = [cfg.batch, cfg.heads, t, hs];
            let mut fig = [(0.0, 0.0); 2];
            for (i, reference) in [false, true].into_iter().enumerate() {
                device.memory_cleanup();
                step(shape, device, reference)?; // warm-up (kernel compilation, autotune)
                let (mut secs, mut mem) = (0.0, 0.0f64);
                for _ in 0..cfg.steps.max(1) {
                    device.memory_cleanup();
                    let (s, m) = step(shape, device, reference)?;
                    secs += s;
                    mem = mem.max(m);
                }
                fig[i] = (secs / cfg.steps.max(1) as f64, mem);
            }
            let [(tf, mf), (tr, mr)] = fig;
            println!(
                "{{\"bench\":\"attention\",\"device\":\"{label}\",\"B\":{},\"nh\":{},\
                 \"T\":{t},\"hs\":{hs},\"fused_ms\":{:.1},\"composed_ms\":{:.1},\
                 \"speedup\":{:.2},\"fused_mib\":{mf:.1},\"composed_mib\":{mr:.1}}}",
                cfg.batch,
                cfg.heads,
                tf * 1e3,
                tr * 1e3,
                tr / tf
            );
            rows.push((t, hs, tf, tr, mf, mr));
        }
    }
    println!(
        "\n| T | hs | fused fwd+bwd (ms) | composed fwd+bwd (ms) | speedup | fused MiB \
         | composed MiB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (t, hs, tf, tr, mf, mr) in rows {
        println!(
            "| {t} | {hs} | {:.1} | {:.1} | {:.2}× | {mf:.1} | {mr:.1} |",
            tf * 1e3,
            tr * 1e3,
            tr / tf
        );
    }
    Ok(())
}
