//! `rlhf devices`, `tokenizer`, `report`, `import`, `export` (and `export-peft`, `import-peft`)
//! and `bench`: the commands around the training stages.

use super::open;
use crate::cli::{
    BenchCmd, ExportArgs, ExportFormat, ExportHfArgs, ExportPeftArgs, GgufType, ImportArgs,
    ImportHfArgs, ImportPeftArgs, KernelsArgs, ReportArgs, TokenizerCmd,
};
use crate::config::ModelConfig;
use crate::device::{self, DeviceChoice};
use crate::pipeline::report;
use crate::stages::{bench, bench_attention, tokenizer};
use anyhow::{Context, Result};

/// `rlhf devices`: every wgpu adapter, and the one `--device auto` picks.
pub(super) fn devices() -> Result<()> {
    let rows = device::list_adapters();
    if rows.is_empty() {
        println!("no wgpu adapters found");
    }
    for (i, r) in rows.iter().enumerate() {
        println!("{i}: {} — {:?}, {:?}", r.name, r.device_type, r.backend);
    }
    match device::pick(DeviceChoice::Auto, &rows) {
        Some(i) => println!(
            "--device auto picks: {} ({:?})",
            rows[i].name, rows[i].backend
        ),
        None => println!("--device auto picks: the CPU backend (no hardware GPU adapter)"),
    }
    Ok(())
}

/// `rlhf kernels`: the final WGSL text of every kernel variant, one file each (`--dump`), and
/// how long the adapter's driver takes to compile each (`--compile-times`).
pub(super) fn kernels(a: KernelsArgs) -> Result<()> {
    let sizes = if a.head_sizes.is_empty() {
        crate::config::model::preset_head_sizes()?
    } else {
        a.head_sizes.clone()
    };
    if let Some(bad) = sizes
        .iter()
        .find(|&&h| !crate::kernels::attention::head_size_supported(h))
    {
        anyhow::bail!("--head-size {bad}: the attention kernels take multiples of 4 from 4 to 128");
    }
    let mut variants = crate::kernels::variants::variants(&sizes);
    if !a.only.is_empty() {
        variants.retain(|v| a.only.iter().any(|o| v.name.contains(o.as_str())));
        anyhow::ensure!(
            !variants.is_empty(),
            "--only {}: no variant's name contains any of these",
            a.only.join(" ")
        );
    }
    if let Some(dir) = &a.dump {
        dump(dir, &variants)?;
        eprintln!(
            "kernels: {} variants (head sizes {sizes:?}) validated by naga and written to {} \
             as WGSL, SPIR-V (.spv), MSL (.metal), HLSL (.hlsl) and GLSL ES 3.10 (.comp)",
            variants.len(),
            dir.display()
        );
    }
    if a.compile_times {
        compile_times(a.device, &variants)?;
    }
    Ok(())
}

fn dump(dir: &std::path::Path, variants: &[crate::kernels::variants::Variant]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for v in variants {
        let t = crate::kernels::translate::translate(&v.wgsl)
            .with_context(|| format!("kernel variant {}", v.name))?;
        let stem = v.name.trim_end_matches(".wgsl");
        let files: [(String, &[u8]); 5] = [
            (v.name.clone(), v.wgsl.as_bytes()),
            (format!("{stem}.spv"), &t.spirv),
            (format!("{stem}.metal"), t.msl.as_bytes()),
            (format!("{stem}.hlsl"), t.hlsl.as_bytes()),
            (format!("{stem}.comp"), t.glsl.as_bytes()),
        ];
        for (name, bytes) in files {
            let p = dir.join(name);
            std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
        }
    }
    Ok(())
}

/// Compiles each variant on the chosen adapter, printing each time as it comes (a slow driver
/// shows which variant it is on), then the total and the slowest.
fn compile_times(
    choice: DeviceChoice,
    variants: &[crate::kernels::variants::Variant],
) -> Result<()> {
    anyhow::ensure!(
        choice != DeviceChoice::Cpu,
        "--compile-times needs a wgpu adapter: --device wgpu, auto, vulkan, metal or dx12"
    );
    let Some(o) = device::open_wgpu(choice)? else {
        anyhow::bail!("--compile-times: no hardware GPU for --device auto; try --device wgpu");
    };
    println!(
        "adapter: {} ({:?}, {:?}); driver: {} {}",
        o.row.name, o.row.device_type, o.row.backend, o.details.driver, o.details.driver_info
    );
    let mut times = Vec::with_capacity(variants.len());
    for v in variants {
        let t = crate::kernels::compile_time::compile_one(&o.device, &o.queue, v)?;
        println!("{:>9.3} s  {}", t.time.as_secs_f64(), t.name);
        times.push(t);
    }
    let total: f64 = times.iter().map(|t| t.time.as_secs_f64()).sum();
    if let Some(slow) = times.iter().max_by_key(|t| t.time) {
        println!(
            "{} variants in {total:.1} s; slowest {} ({:.2} s)",
            times.len(),
            slow.name,
            slow.time.as_secs_f64()
        );
    }
    Ok(())
}

/// `rlhf tokenizer train`.
pub(super) fn tokenizer(t: TokenizerCmd) -> Result<()> {
    match t {
        TokenizerCmd::Train {
            corpus,
            vocab_size,
            out,
        } => tokenizer::train(&corpus, vocab_size, &out),
    }
}

/// `rlhf report`: (re)writes report.md and its plots.
pub(super) fn report(a: ReportArgs) -> Result<()> {
    let p = report::write_report(&a.run)?;
    eprintln!("report: {}", p.display());
    Ok(())
}

/// `rlhf import`: a Hugging Face directory or a GGUF file into a checkpoint.
pub(super) fn import(a: ImportArgs) -> Result<()> {
    let s = if a.from.is_dir() {
        crate::hf::import_hf(&a.from, &a.out)?
    } else if a.from.is_file() {
        crate::hf::import_gguf(&a.from, &a.out)?
    } else {
        anyhow::bail!(
            "{} does not exist: expected a Hugging Face model directory or a .gguf file",
            a.from.display()
        );
    };
    print_import("import", &s);
    Ok(())
}

/// `rlhf merge`: a LoRA checkpoint's adapters folded into a full checkpoint.
pub(super) fn merge(a: crate::cli::MergeArgs) -> Result<()> {
    let dev = open(a.device.device)?;
    let kind = crate::stages::merge::merge(&a.ckpt, &a.out, &dev.device)?;
    eprintln!(
        "merge: the adapters of {} folded into a full '{kind}' checkpoint {}",
        a.ckpt.display(),
        a.out.display()
    );
    Ok(())
}

/// `rlhf import-hf`: a Hugging Face directory into a checkpoint.
pub(super) fn import_hf(a: ImportHfArgs) -> Result<()> {
    let s = crate::hf::import_hf(&a.dir, &a.out)?;
    print_import("import-hf", &s);
    Ok(())
}

fn print_import(cmd: &str, s: &crate::hf::import::ImportSummary) {
    eprintln!(
        "{cmd}: {} tensors ({} layers, {} wide, {} heads, ctx {}, vocab {}) \
         -> '{}' checkpoint {}; skipped {} (mask buffers, a tied lm_head)",
        s.tensors,
        s.model.n_layer,
        s.model.n_embd,
        s.model.n_head,
        s.model.n_ctx,
        s.model.vocab_size,
        s.kind,
        s.out.display(),
        s.skipped.len()
    );
}

/// `rlhf export-hf`: a checkpoint as a Hugging Face GPT-2 directory.
pub(super) fn export_hf(a: ExportHfArgs) -> Result<()> {
    let s = crate::hf::export_hf(&a.ckpt, &a.out)?;
    eprintln!(
        "export-hf: {} with {} tensors -> {}",
        s.architecture,
        s.tensors,
        s.out.display()
    );
    Ok(())
}

/// `rlhf export-peft`: a LoRA checkpoint's adapters as a PEFT adapter directory.
pub(super) fn export_peft(a: ExportPeftArgs) -> Result<()> {
    let s = crate::hf::export_peft(&a.ckpt, &a.out)?;
    eprintln!(
        "export-peft: rank-{} adapters on {} ({} tensors) -> {}",
        s.rank,
        s.target_modules.join(", "),
        s.tensors,
        s.out.display()
    );
    Ok(())
}

/// `rlhf import-peft`: a PEFT adapter directory on a base checkpoint, as a LoRA checkpoint.
pub(super) fn import_peft(a: ImportPeftArgs) -> Result<()> {
    let s = crate::hf::import_peft(&a.adapter, &a.base, &a.out)?;
    eprintln!(
        "import-peft: rank-{} adapters (alpha {}) on {} layers -> LoRA checkpoint {}",
        s.lora.rank,
        s.lora.alpha,
        s.layers,
        s.out.display()
    );
    Ok(())
}

/// `rlhf export`: a checkpoint as a Hugging Face directory, a GGUF file or PEFT adapters.
pub(super) fn export(a: ExportArgs) -> Result<()> {
    let gguf_ext = a
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    let format = a.format.unwrap_or(if gguf_ext {
        ExportFormat::Gguf
    } else {
        ExportFormat::Hf
    });
    if format != ExportFormat::Gguf {
        anyhow::ensure!(
            a.gguf_type.is_none(),
            "--gguf-type applies to --format gguf only"
        );
    }
    match format {
        ExportFormat::Hf => {
            return export_hf(ExportHfArgs {
                ckpt: a.ckpt,
                out: a.out,
            })
        }
        ExportFormat::Peft => {
            return export_peft(ExportPeftArgs {
                ckpt: a.ckpt,
                out: a.out,
            })
        }
        ExportFormat::Gguf => {}
    }
    let ty = match a.gguf_type.unwrap_or(GgufType::F16) {
        GgufType::F32 => crate::gguf::GgmlType::F32,
        GgufType::F16 => crate::gguf::GgmlType::F16,
        GgufType::Q8_0 => crate::gguf::GgmlType::Q8_0,
    };
    let s = crate::hf::export_gguf(&a.ckpt, &a.out, ty)?;
    let fallback = match s.f16_fallback.len() {
        0 => String::new(),
        n => format!(" ({n} matrices as F16: rows not whole Q8_0 blocks)"),
    };
    eprintln!(
        "export: GGUF '{}' with {} tensors, matrices {}{fallback} -> {}",
        s.architecture,
        s.tensors,
        s.ggml_type,
        s.out.display()
    );
    Ok(())
}

/// `rlhf bench ...`: throughput figures.
pub(super) fn bench(b: BenchCmd) -> Result<()> {
    match b {
        BenchCmd::Train {
            preset,
            vocab_size,
            batch_size,
            steps,
            micro_batches,
            lora,
            device,
        } => {
            let dev = open(device.device)?;
            let mut cfg = ModelConfig::preset(&preset)?;
            cfg.vocab_size = vocab_size;
            bench::train(
                &cfg,
                (batch_size, micro_batches),
                steps,
                lora.config().as_ref(),
                &dev.device,
                &dev.description,
            )
        }
        BenchCmd::Attention {
            batch_size,
            heads,
            max_t,
            steps,
            device,
        } => {
            let dev = open(device.device)?;
            let cfg = bench_attention::AttentionBench {
                batch: batch_size,
                heads,
                head_sizes: vec![32, 64],
                lengths: [128, 256, 512, 1024]
                    .into_iter()
                    .filter(|&t| t <= max_t)
                    .collect(),
                steps,
            };
            bench_attention::run(&cfg, &dev.device, &dev.description)
        }
        BenchCmd::Generate {
            preset,
            vocab_size,
            batch_size,
            new_tokens,
            device,
        } => {
            let dev = open(device.device)?;
            let mut cfg = ModelConfig::preset(&preset)?;
            cfg.vocab_size = vocab_size;
            bench::generate_bench(&cfg, batch_size, new_tokens, &dev.device, &dev.description)
        }
        BenchCmd::RankLoss { device } => {
            crate::kernels::bench_rank_loss(&open(device.device)?.device)
        }
    }
}
