//! `rlhf doctor`: does this adapter compute what the CPU computes, and how fast? Prints the
//! adapter (name, driver, limits), the fused kernels against their reference twins (values and
//! gradients, `kernels::selfcheck`), one training step of a small GPT against the CPU backend
//! from the same weights and batch, and a short throughput probe, then a verdict. Fails (exit 1)
//! when a check fails, so a script or a bug report can rely on it.

use crate::config::{ModelConfig, TrainConfig};
use crate::device::Selected;
use crate::kernels::selfcheck::{self, Check};
use crate::model::{InitRng, Lm};
use crate::stages::bench;
use crate::stages::lm_train::batch_grads;
use crate::train::guard::Guard;
use crate::train::trained::StepGrads;
use crate::util::rng::Rng;
use crate::util::tensors::to_vec;
use anyhow::{bail, Result};
use burn::prelude::*;

/// Largest relative difference allowed between a training step on the device and on the CPU.
/// Rounding alone gave 0 (loss, gradient norm) and 2.2e-7 (`wte` gradient) on lavapipe (3.8e-8,
/// 0 and 4.4e-7 with dropout 0.1, the GPU's one pass against the CPU's two threads); the
/// attention kernel's output scaled by 1.001 on purpose gave 4.6e-7, 8e-6 and 2.6e-4, so the
/// `wte` gradient at 1e-4 catches an error of that size with a margin of ~400 over rounding.
pub const STEP_TOLERANCE: f64 = 1e-4;

/// The loss, the gradients' global norm and the `wte` gradient of one training step (dropout
/// 0.1, 2 micro-batches: threads on the CPU, one pass on a GPU) of the tiny preset at vocabulary
/// 512, from seed 3, on `device`.
fn training_step(device: &Device) -> Result<(f64, f64, Vec<f32>)> {
    let mut cfg = ModelConfig::preset("tiny")?;
    cfg.vocab_size = 512;
    // both devices drop the same elements (`model::dropout`), so dropout stays in the check
    cfg.dropout = 0.1;
    let model = Lm::new(&cfg, &mut InitRng::new(3), device).train();
    let batch = bench::random_batch(4, cfg.n_ctx, cfg.vocab_size, &mut Rng::new(5));
    let tc = TrainConfig {
        micro_batches: 2,
        ..TrainConfig::pretrain()
    };
    let guard = Guard::new("doctor", 1)?;
    let ad = device.clone().autodiff();
    let StepGrads {
        loss,
        grad_norm: norm,
        grads,
    } = batch_grads(&model, &batch, &tc, 0, &guard, &ad)?;
    let wte = grads
        .get::<2>(model.token_embeddings().id)
        .map(to_vec)
        .transpose()?
        .unwrap_or_default();
    Ok((loss, norm, wte))
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

/// One training step here and on the CPU: (what, relative difference) for the loss, the
/// gradient norm and the largest `wte` gradient difference.
fn step_against_cpu(device: &Device) -> Result<Vec<(String, f64)>> {
    let (l, n, g) = training_step(device)?;
    let (lc, nc, gc) = training_step(&Device::flex())?;
    Ok(vec![
        (
            format!("training step: loss {l:.6} (CPU {lc:.6})"),
            rel(l, lc),
        ),
        (
            format!("training step: gradient norm {n:.6} (CPU {nc:.6})"),
            rel(n, nc),
        ),
        (
            "training step: wte gradient".to_string(),
            selfcheck::rel_err(&g, &gc) as f64,
        ),
    ])
}

fn print_adapter(sel: &Selected) {
    println!("device: {}", sel.description);
    if let Some(a) = &sel.adapter {
        println!("driver: {} {}", a.driver, a.driver_info);
        println!(
            "limits: workgroup memory {} B, {} invocations per workgroup, \
             storage binding {} MiB, buffer {} MiB",
            a.max_workgroup_storage,
            a.max_invocations_per_workgroup,
            a.max_storage_buffer_binding >> 20,
            a.max_buffer >> 20
        );
    }
}

fn row(ok: bool, what: &str, err: f64, tol: f64) -> bool {
    let verdict = if ok { "ok" } else { "FAIL" };
    println!("{verdict:<5} {what:<58} {err:>9.1e} {tol:>9.0e}");
    ok
}

/// The kernel checks alone, as a GPU run of `rlhf pipeline` does them before training: an error
/// naming every failed check, so a wrong adapter never trains a model.
pub fn require_kernels(device: &Device) -> Result<Vec<Check>> {
    let checks = selfcheck::run_checks(device)?;
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok())
        .map(|c| {
            if c.launched {
                format!(
                    "{}: relative error {:.1e} > {:.0e}",
                    c.name,
                    c.max_rel,
                    selfcheck::TOLERANCE
                )
            } else {
                format!("{}: the kernel did not launch", c.name)
            }
        })
        .collect();
    if !failed.is_empty() {
        bail!(
            "this adapter computes the fused kernels wrongly:\n  {}\n\
             run `rlhf doctor` for the details and send its output with a bug report; \
             `--no-kernels` trains with the composed reference ops instead, \
             `--device cpu` on the CPU",
            failed.join("\n  ")
        );
    }
    Ok(checks)
}

/// `rlhf doctor`.
pub fn run(sel: &Selected) -> Result<()> {
    let start = std::time::Instant::now();
    print_adapter(sel);
    let device = &sel.device;
    println!(
        "{:<5} {:<58} {:>9} {:>9}",
        "", "check", "rel. err", "tolerance"
    );
    let mut all_ok = true;
    if crate::kernels::is_kernel_device(device) {
        selfcheck::run_checks_each(device, |c| {
            let what = if c.launched {
                c.name.clone()
            } else {
                format!("{} (kernel not launched)", c.name)
            };
            all_ok &= row(c.ok(), &what, c.max_rel as f64, selfcheck::TOLERANCE as f64);
        })?;
    } else {
        println!("      fused kernels: not used on this device (the reference ops run)");
    }
    for (what, err) in step_against_cpu(device)? {
        all_ok &= row(err <= STEP_TOLERANCE, &what, err, STEP_TOLERANCE);
    }
    let tiny = {
        let mut c = ModelConfig::preset("tiny")?;
        c.vocab_size = 1024;
        c
    };
    let train = bench::train_tokens_per_s(&tiny, (8, 1), 5, device)?;
    let [generate, _] = bench::generate_tokens_per_s(&tiny, 8, 32, device)?;
    println!(
        "throughput (tiny preset, batch 8): train {train:.0} tokens/s, \
         generate {generate:.0} tokens/s (KV cache)"
    );
    if !all_ok {
        bail!("doctor: some checks failed (above); send this output with a bug report");
    }
    println!(
        "verdict: ok — this device computes what the CPU backend computes ({:.0} s, the kernels' \
         compile time included)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
