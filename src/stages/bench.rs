//! `rlhf bench train|generate`: throughput figures on random data (not timed tests).

use crate::config::ModelConfig;
use crate::config::TrainConfig;
use crate::data::batching::Batch;
use crate::model::generate::{generate, SampleConfig};
use crate::model::{InitRng, Lm};
use crate::stages::bench_counters::{Counting, Counts};
use crate::stages::lm_train::batch_grads;
use crate::train::clip::clip_to_norm;
use crate::train::guard::Guard;
use crate::util::rng::Rng;
use anyhow::Result;
use burn::module::Module;
use burn::optim::AdamWConfig;
use burn::prelude::*;
use std::time::Instant;

pub use crate::util::memory::peak_rss_mib;

/// Device memory in use by burn's pools (wgpu), in MiB.
pub fn device_mem_mib(device: &Device) -> Option<f64> {
    device
        .memory_pool_usage()
        .map(|u| u.bytes_in_use as f64 / (1024.0 * 1024.0))
}

/// A batch of `b` rows of `t` random ids (inputs, then targets, from `rng`), every target weighted.
pub(crate) fn random_batch(b: usize, t: usize, vocab: usize, rng: &mut Rng) -> Batch {
    let x: Vec<i64> = (0..b * t).map(|_| rng.below(vocab) as i64).collect();
    let y: Vec<i64> = (0..b * t).map(|_| rng.below(vocab) as i64).collect();
    Batch {
        b,
        t,
        x,
        y,
        w: vec![1.0; b * t],
    }
}

/// Train tokens/s of `cfg` with batch `b` at full context cut into `micro` micro-batches (the
/// training stages' step: `lm_train::batch_grads`, global-norm clipping, AdamW), after 3
/// warm-up steps.
pub fn train_tokens_per_s(
    cfg: &ModelConfig,
    (b, micro): (usize, usize),
    steps: usize,
    device: &Device,
) -> Result<f64> {
    Ok(train_measure(cfg, (b, micro), steps, None, device)?.0)
}

/// [`train_tokens_per_s`] and what the timed steps cost the host ([`Counts`], over all steps);
/// with `lora`, the model frozen under fresh adapters that train instead.
pub fn train_measure(
    cfg: &ModelConfig,
    (b, micro): (usize, usize),
    steps: usize,
    lora: Option<&crate::config::lora::LoraConfig>,
    device: &Device,
) -> Result<(f64, Counts)> {
    let ad = device.clone().autodiff();
    let mut model = Lm::new(cfg, &mut InitRng::new(0), device);
    if let Some(l) = lora {
        l.validate()?;
        model = model.with_lora(l, &mut InitRng::new(1), device);
    }
    let mut model = model.train();
    let mut optim = AdamWConfig::new().init();
    let mut rng = Rng::new(0);
    let t = cfg.n_ctx;
    let tc = TrainConfig {
        micro_batches: micro,
        ..TrainConfig::pretrain()
    };
    let guard = Guard::new("bench", 1)?;
    let mut step = 0;
    let mut run = |model: Lm, rng: &mut Rng| -> Result<Lm> {
        let batch = random_batch(b, t, cfg.vocab_size, rng);
        // the stage's step: gradient, its global norm (read with the loss), clipping
        let out = batch_grads(&model, &batch, &tc, step, &guard, &ad)?;
        let mut g = out.grads;
        clip_to_norm(&model, &mut g, out.grad_norm, tc.grad_clip);
        step += 1;
        Ok(optim.step(1e-4, model, g))
    };
    for _ in 0..3 {
        model = run(model, &mut rng)?;
    }
    device
        .sync()
        .map_err(|e| anyhow::anyhow!("waiting for the device: {e:?}"))?;
    let counting = Counting::start();
    let t0 = Instant::now();
    for _ in 0..steps {
        model = run(model, &mut rng)?;
    }
    device
        .sync()
        .map_err(|e| anyhow::anyhow!("waiting for the device: {e:?}"))?;
    let secs = t0.elapsed().as_secs_f64();
    drop(model);
    Ok(((steps * b * t) as f64 / secs, counting.finish()))
}

/// `rlhf bench train`: [`train_tokens_per_s`] as one JSON line, with peak memory.
pub fn train(
    cfg: &ModelConfig,
    (b, micro): (usize, usize),
    steps: usize,
    lora: Option<&crate::config::lora::LoraConfig>,
    device: &Device,
    label: &str,
) -> Result<()> {
    let (tokens_per_s, counts) = train_measure(cfg, (b, micro), steps, lora, device)?;
    let rank = lora.map_or_else(|| "null".to_string(), |l| l.rank.to_string());
    println!(
        "{{\"bench\":\"train\",\"device\":\"{label}\",\"micro_batches\":{micro},\
         \"layers\":{},\"width\":{},\"ctx\":{},\"batch\":{b},\"lora_rank\":{rank},\
         \"train_tokens_per_s\":{:.0},{},\"peak_rss_mib\":{},\"device_mem_mib\":{}}}",
        cfg.n_layer,
        cfg.n_embd,
        cfg.n_ctx,
        tokens_per_s,
        counts.json_fields(steps, "step"),
        peak_rss_mib()
            .map(|m| format!("{m:.0}"))
            .unwrap_or("null".into()),
        device_mem_mib(device)
            .map(|m| format!("{m:.0}"))
            .unwrap_or("null".into())
    );
    Ok(())
}

/// Generated tokens/s of batch `b` with the KV cache and without it (greedy, `new_tokens` per
/// row, no EOT stop), after a warm-up run of each.
pub fn generate_tokens_per_s(
    cfg: &ModelConfig,
    b: usize,
    new_tokens: usize,
    device: &Device,
) -> Result<[f64; 2]> {
    Ok(generate_measure(cfg, b, new_tokens, device)?.0)
}

/// [`generate_tokens_per_s`] and what the cached run cost the host ([`Counts`] and the tokens
/// it generated: B per step).
pub fn generate_measure(
    cfg: &ModelConfig,
    b: usize,
    new_tokens: usize,
    device: &Device,
) -> Result<([f64; 2], Counts, usize)> {
    let model = Lm::new(cfg, &mut InitRng::new(0), device).valid();
    let prompt_len = 8.min(cfg.n_ctx / 2).max(1);
    let mut rng = Rng::new(1);
    let prompts: Vec<Vec<u32>> = (0..b)
        .map(|_| {
            (0..prompt_len)
                .map(|_| rng.below(cfg.vocab_size) as u32)
                .collect()
        })
        .collect();
    let sc = SampleConfig {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        max_new_tokens: new_tokens,
    };
    // eot = vocab_size never matches, so every row generates exactly max_new_tokens
    let eot = cfg.vocab_size as u32;
    // one timed run after a warm-up: tokens/s, its counts and the tokens it generated
    let mut timed = |cached: bool| -> Result<(f64, Counts, usize)> {
        let _ = generate(&model, &prompts, &sc, eot, &mut rng, cached, device)?; // warm-up
        let counting = Counting::start();
        let t0 = Instant::now();
        let out = generate(&model, &prompts, &sc, eot, &mut rng, cached, device)?;
        let n: usize = out.iter().map(|o| o.len()).sum();
        let tokens_per_s = n as f64 / t0.elapsed().as_secs_f64();
        Ok((tokens_per_s, counting.finish(), n))
    };
    let (cached, counts, n) = timed(true)?;
    let (uncached, _, _) = timed(false)?;
    let figures = [cached, uncached];
    Ok((figures, counts, n))
}

/// `rlhf bench generate`: [`generate_tokens_per_s`] as one JSON line.
pub fn generate_bench(
    cfg: &ModelConfig,
    b: usize,
    new_tokens: usize,
    device: &Device,
    label: &str,
) -> Result<()> {
    let ([cached, uncached], counts, n) = generate_measure(cfg, b, new_tokens, device)?;
    println!(
        "{{\"bench\":\"generate\",\"device\":\"{label}\",\"layers\":{},\"width\":{},\
         \"batch\":{b},\"new_tokens\":{new_tokens},\"tokens_per_s_kv_cache\":{cached:.0},\
         \"tokens_per_s_no_cache\":{uncached:.0},\"speedup\":{:.2},{}}}",
        cfg.n_layer,
        cfg.n_embd,
        cached / uncached,
        counts.json_fields(n, "token")
    );
    Ok(())
}
