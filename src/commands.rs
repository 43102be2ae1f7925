//! Dispatch from parsed command-line arguments to the stages.

use crate::cli::{BenchCmd, Cli, Command, LabelerKind, TokenizerCmd};
use crate::config::ModelConfig;
use crate::data::tokenizer::Tok;
use crate::device::{self, DeviceChoice};
use crate::pipeline::{self, report};
use crate::stages::{
    assets, bench, bench_attention, chat, eval, label, pretrain, rm, sample, sft, tokenizer,
};
use anyhow::Result;
use std::path::PathBuf;

fn open(choice: DeviceChoice) -> Result<device::Selected> {
    let s = device::select(choice)?;
    eprintln!("device: {}", s.description);
    Ok(s)
}

/// `runs/<UTC timestamp>` for a new pipeline run.
pub fn default_run_dir() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    PathBuf::from("runs").join(format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    ))
}

pub fn dispatch(cli: Cli) -> Result<()> {
    crate::util::panic::inject();
    match cli.command {
        Command::Devices => {
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
        Command::Tokenizer(TokenizerCmd::Train {
            corpus,
            vocab_size,
            out,
        }) => tokenizer::train(&corpus, vocab_size, &out),
        Command::Pretrain(a) => {
            let dev = open(a.device.device)?;
            let tok = Tok::open(&a.tokenizer)?;
            let model =
                ModelConfig::preset(&a.model.preset)?.with_overrides(&a.model.overrides())?;
            let s = pretrain::run(
                pretrain::PretrainJob {
                    corpus: a.corpus,
                    tok,
                    model,
                    train: a.optim.apply(pretrain::default_config()),
                    val_fraction: a.val_fraction,
                    out: a.out.clone(),
                    resume: a.resume,
                },
                &dev.device,
            )?;
            eprintln!(
                "pretrain: held-out loss {:.3} -> {:.3}; checkpoint in {}",
                s.first_eval_loss,
                s.final_eval_loss,
                a.out.join("ckpt").display()
            );
            Ok(())
        }
        Command::Sft(a) => {
            let dev = open(a.device.device)?;
            let s = sft::run(
                sft::SftJob {
                    init: a.init,
                    data: a.data,
                    train: a.optim.apply(sft::default_config()),
                    val_fraction: a.val_fraction,
                    dropout: a.dropout,
                    out: a.out.clone(),
                    resume: a.resume,
                },
                &dev.device,
            )?;
            eprintln!(
                "sft: held-out loss {:.3} -> {:.3}; checkpoint in {}",
                s.first_eval_loss,
                s.final_eval_loss,
                a.out.join("ckpt").display()
            );
            Ok(())
        }
        Command::Label(a) if a.labeler == LabelerKind::Human => {
            let r = label::label_human(&a.samples, &a.out)?;
            eprintln!(
                "label: {} of {} prompts ranked ({} this session), {} skipped, {} to go, {} unrankable -> {}",
                r.ranked, r.prompts, r.ranked_now, r.skipped, r.remaining, r.unrankable, a.out.display()
            );
            Ok(())
        }
        Command::Label(a) => {
            let lexicon = match a.lexicon {
                Some(p) => p,
                None => assets::dir(None)?.join("vader/vader_lexicon.txt"),
            };
            let r = label::label_sentiment(
                &a.samples,
                &a.out,
                &lexicon,
                a.labeler_noise,
                a.seed,
                a.keep_ties,
            )?;
            eprintln!(
                "label: ranked {} of {} prompts ({} with fewer than 2 distinct responses skipped, {} responses tied with a better one left out); agreement with the noiseless labeler {:.3} -> {}",
                r.ranked, r.prompts, r.skipped, r.tied_dropped, r.agreement, a.out.display()
            );
            Ok(())
        }
        Command::Rm(a) => {
            let dev = open(a.device.device)?;
            let s = rm::run(
                rm::RmJob {
                    init: a.init,
                    data: a.data,
                    out: a.out.clone(),
                    train: a.optim.apply(rm::default_config()),
                    val_fraction: a.val_fraction,
                    skip_invalid: a.skip_invalid,
                    norm_samples: a.norm_samples,
                    norm_max: a.norm_max,
                    dropout: a.dropout,
                    resume: a.resume,
                },
                &dev.device,
            )?;
            eprintln!(
                "rm: held-out pairwise accuracy {:.3} -> {:.3}, loss {:.3} -> {:.3}, reward bias {:+.3}; checkpoint in {}",
                s.first_eval.accuracy, s.final_eval.accuracy, s.first_eval.loss, s.final_eval.loss, s.reward_bias, a.out.join("ckpt").display()
            );
            Ok(())
        }
        Command::Ppo(a) => ppo_command(*a),
        Command::Score(a) => {
            let dev = open(a.device.device)?;
            let rows = rm::score_file(&a.rm, &a.data, &dev.device)?;
            match a.out {
                Some(p) => crate::data::formats::write_jsonl(&p, &rows)?,
                None => {
                    for r in rows {
                        println!("{r}");
                    }
                }
            }
            Ok(())
        }
        Command::Sample(a) => {
            let dev = open(a.device.device)?;
            sample::run(
                &sample::SampleJob {
                    ckpt: a.ckpt,
                    prompts: a.prompts,
                    k: a.k,
                    out: a.out,
                    sampling: a.sampling.config(),
                    seed: a.sampling.seed,
                    batch_size: a.batch_size,
                    limit: a.limit,
                },
                &dev.device,
            )?;
            Ok(())
        }
        Command::Chat(a) => {
            let dev = open(a.device.device)?;
            chat::run(&a.ckpt, &a.sampling.config(), a.sampling.seed, &dev.device)
        }
        Command::Pipeline(a) => {
            let dev = open(a.device.device)?;
            let mut cfg = pipeline::PipelineConfig::for_preset(&a.preset, &Default::default())?;
            if let Some(k) = a.k {
                anyhow::ensure!((2..=9).contains(&k), "-k must be between 2 and 9, got {k}");
                cfg.k = k;
            }
            anyhow::ensure!(a.rounds >= 1, "--rounds must be at least 1");
            cfg.rounds = a.rounds;
            cfg.labeler = a.labeler;
            if let Some(v) = a.labeler_noise {
                cfg.labeler_noise = v;
            }
            if let Some(v) = a.ptx_coef {
                cfg.ppo.ptx_coef = v;
            }
            if let Some(v) = a.kl_coef {
                cfg.ppo.kl_coef = v;
            }
            cfg.ptx_ablation = a.ptx_ablation;
            if let Some(v) = a.ppo_steps {
                cfg.ppo.steps = v;
            }
            let out = a.out.unwrap_or_else(default_run_dir);
            pipeline::run(&cfg, &out, a.assets.as_deref(), &dev.device)?;
            Ok(())
        }
        Command::Eval(a) => eval_command(a),
        Command::Report(a) => {
            let p = report::write_report(&a.run)?;
            eprintln!("report: {}", p.display());
            Ok(())
        }
        Command::ImportHf(a) => {
            let s = crate::hf::import_hf(&a.dir, &a.out)?;
            eprintln!(
                "import-hf: {} tensors ({} layers, {} wide, {} heads, ctx {}, vocab {}) -> '{}' checkpoint {}; skipped {} (mask buffers, tied lm_head)",
                s.tensors, s.model.n_layer, s.model.n_embd, s.model.n_head, s.model.n_ctx,
                s.model.vocab_size, s.kind, s.out.display(), s.skipped.len()
            );
            Ok(())
        }
        Command::ExportHf(a) => {
            let s = crate::hf::export_hf(&a.ckpt, &a.out)?;
            eprintln!(
                "export-hf: {} with {} tensors -> {}",
                s.architecture,
                s.tensors,
                s.out.display()
            );
            Ok(())
        }
        Command::Bench(b) => match b {
            BenchCmd::Train {
                preset,
                vocab_size,
                batch_size,
                steps,
                micro_batches,
                device,
            } => {
                let dev = open(device.device)?;
                let mut cfg = ModelConfig::preset(&preset)?;
                cfg.vocab_size = vocab_size;
                bench::train(
                    &cfg,
                    (batch_size, micro_batches),
                    steps,
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
        },
    }
}

fn ppo_command(a: crate::cli::PpoArgs) -> Result<()> {
    use crate::stages::{assets, ppo};
    let dev = open(a.device.device)?;
    let cfg = a.config();
    let need_assets = a.prompts.is_none() || (cfg.ptx_coef > 0.0 && a.ptx_corpus.is_empty());
    let assets_dir = if need_assets {
        Some(assets::dir(a.assets.as_deref())?)
    } else {
        None
    };
    let ptx_corpus = match (&assets_dir, a.ptx_corpus.is_empty() && cfg.ptx_coef > 0.0) {
        (Some(d), true) => assets::training_corpus(d)?,
        _ => a.ptx_corpus.clone(),
    };
    let reward = match (&a.rm, &a.reward_token) {
        (Some(p), _) => ppo::RewardSource::Model(p.clone()),
        (None, Some(t)) => ppo::RewardSource::TokenCount {
            text: t.clone(),
            scale: 1.0,
        },
        (None, None) => anyhow::bail!("give --rm CKPT (or --reward-token TEXT)"),
    };
    let prompts = match (&a.prompts, &assets_dir) {
        (Some(p), _) => p.clone(),
        (None, Some(d)) => d.join("prompts.jsonl"),
        (None, None) => anyhow::bail!("give --prompts FILE"),
    };
    let s = ppo::run(
        ppo::PpoJob {
            policy: a.policy,
            reference: a.reference,
            reward,
            value_init: a.value_init,
            prompts,
            ptx_corpus,
            out: a.out.clone(),
            cfg,
            resume: a.resume,
        },
        &dev.device,
    )?;
    eprintln!(
        "ppo: {} iterations ({} episodes) in {:.1}s: RM score {:.3} -> {:.3}, KL {:.2} -> {:.2} nats/response, ptx loss {:.3}; policy in {}",
        s.steps, s.episodes, s.seconds, s.first.rm_score, s.last.rm_score, s.first.kl, s.last.kl, s.last.ptx_loss, a.out.join("ckpt").display()
    );
    Ok(())
}

/// `rlhf eval`: bundled defaults for the prompts, lexicon and held-out text.
fn eval_command(a: crate::cli::EvalArgs) -> Result<()> {
    let dev = open(a.device.device)?;
    let need_assets = a.prompts.is_none() || a.lexicon.is_none() || a.heldout_text.is_none();
    let assets = if need_assets {
        Some(assets::dir(None)?)
    } else {
        None
    };
    let asset = |p: Option<PathBuf>, rel: &str| -> PathBuf {
        p.unwrap_or_else(|| assets.as_ref().map(|d| d.join(rel)).unwrap_or_default())
    };
    let job = eval::EvalJob {
        policy: a.policy,
        baseline: a.baseline,
        prompts: asset(a.prompts, "eval_prompts.jsonl"),
        lexicon: asset(a.lexicon, "vader/vader_lexicon.txt"),
        rm: a.rm,
        pretrained: a.pretrained,
        heldout_text: asset(
            a.heldout_text,
            &format!("austen/{}", assets::HELD_OUT_NOVEL),
        ),
        ppl_windows: a.ppl_windows,
        out: a.out.clone(),
        n: a.n,
        sampling: crate::model::generate::SampleConfig {
            temperature: a.temperature,
            top_k: a.top_k,
            top_p: a.top_p,
            max_new_tokens: a.max_new_tokens,
        },
        seed: a.seed,
        batch_size: a.batch_size,
    };
    eval::run(&job, &dev.device)?;
    eprintln!("eval: wrote {}", a.out.join("eval.json").display());
    Ok(())
}
