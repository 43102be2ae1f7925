//! `rlhf pipeline`: the main job on the bundled assets — tokenizer → pretrain → SFT → sample K
//! responses per prompt → label them (simulated sentiment labeler) → reward model — each stage in its own subdirectory of `--out`. Rerun on the same
//! directory, finished stages are skipped and an interrupted one resumes from its checkpoint.

use super::lm_train::{is_finished, TrainConfig};
use super::{assets, label, pretrain, rm, sample, sft, tokenizer};
use crate::config::{ModelConfig, ModelOverrides};
use crate::data::tokenizer::Tok;
use crate::model::generate::SampleConfig;
use anyhow::{Context, Result};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The resolved settings of a pipeline run, saved as `pipeline.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineConfig {
    pub preset: String,
    pub model: ModelConfig,
    /// BPE vocabulary size.
    pub vocab_size: usize,
    pub pretrain: TrainConfig,
    pub sft: TrainConfig,
    pub rm: TrainConfig,
    /// Bradley–Terry temperature of the simulated labeler (0: exact sentiment order).
    pub labeler_noise: f64,
    /// Responses sampled per prompt for labeling (InstructGPT: 4 to 9).
    pub k: usize,
    /// Prompts sampled from `assets/prompts.jsonl` (0: all).
    pub sample_prompts: usize,
    pub sampling: SampleConfig,
    pub seed: u64,
}

impl PipelineConfig {
    /// Defaults per preset: `tiny` runs in a few minutes on 2 CPU cores (for tests), `small` is
    /// the default job.
    pub fn for_preset(preset: &str, overrides: &ModelOverrides) -> Result<Self> {
        let model = ModelConfig::preset(preset)?.with_overrides(overrides)?;
        let (mut pt, mut st, mut rt) = (
            pretrain::default_config(),
            sft::default_config(),
            rm::default_config(),
        );
        let (vocab_size, sample_prompts, max_new) = match preset {
            "tiny" => {
                (pt.steps, pt.batch_size, pt.eval_every, pt.checkpoint_every) = (120, 8, 40, 40);
                (st.steps, st.batch_size, st.eval_every, st.checkpoint_every) = (60, 8, 20, 20);
                (pt.eval_batches, st.eval_batches) = (4, 4);
                (rt.steps, rt.eval_every, rt.checkpoint_every) = (30, 10, 10);
                (512, 16, 24)
            }
            "small" => (2048, 300, 48),
            _ => (4096, 300, 64),
        };
        Ok(Self {
            preset: preset.to_string(),
            model,
            vocab_size,
            pretrain: pt,
            sft: st,
            rm: rt,
            labeler_noise: 0.0,
            k: 4,
            sample_prompts,
            sampling: SampleConfig {
                max_new_tokens: max_new,
                ..Default::default()
            },
            seed: 7,
        })
    }
}

fn stage_line(i: usize, n: usize, name: &str, what: &str) {
    eprintln!("[{i}/{n}] {name}: {what}");
}

/// Runs the pipeline; returns the run directory.
pub fn run(
    cfg: &PipelineConfig,
    out: &Path,
    assets_dir: Option<&Path>,
    device: &Device,
) -> Result<PathBuf> {
    let assets = assets::dir(assets_dir)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    crate::config::save_json(cfg, &out.join("pipeline.json"))?;
    let n = 6;
    let t_all = Instant::now();

    // 1. tokenizer
    let tok_path = out.join("tokenizer.json");
    let corpus = assets::training_corpus(&assets)?;
    if tok_path.is_file() {
        stage_line(1, n, "tokenizer", "already done, skipped");
    } else {
        let t0 = Instant::now();
        stage_line(
            1,
            n,
            "tokenizer",
            &format!(
                "training a {}-token byte-level BPE on {} novels",
                cfg.vocab_size,
                corpus.len()
            ),
        );
        tokenizer::train(&corpus, cfg.vocab_size, &tok_path)?;
        stage_line(
            1,
            n,
            "tokenizer",
            &format!("done in {:.1}s", t0.elapsed().as_secs_f64()),
        );
    }
    let tok = Tok::load(&tok_path)?;

    // 2. pretrain
    let pre_dir = out.join("pretrain");
    if is_finished(&pre_dir) {
        stage_line(2, n, "pretrain", "already done, skipped");
    } else {
        let t0 = Instant::now();
        stage_line(
            2,
            n,
            "pretrain",
            &format!(
                "{} steps of {}×{} tokens",
                cfg.pretrain.steps, cfg.pretrain.batch_size, cfg.model.n_ctx
            ),
        );
        let s = pretrain::run(
            pretrain::PretrainJob {
                corpus: corpus.clone(),
                tok: tok.clone(),
                model: cfg.model.clone(),
                train: cfg.pretrain.clone(),
                val_fraction: 0.05,
                out: pre_dir.clone(),
                resume: true,
            },
            device,
        )?;
        stage_line(
            2,
            n,
            "pretrain",
            &format!(
                "done in {:.1}s: held-out loss {:.3} -> {:.3} (ppl {:.1}), {:.0} tokens/s",
                t0.elapsed().as_secs_f64(),
                s.first_eval_loss,
                s.final_eval_loss,
                s.final_eval_loss.exp(),
                s.tokens_per_s
            ),
        );
    }

    // 3. SFT
    let sft_dir = out.join("sft");
    if is_finished(&sft_dir) {
        stage_line(3, n, "sft", "already done, skipped");
    } else {
        let t0 = Instant::now();
        stage_line(
            3,
            n,
            "sft",
            &format!(
                "{} steps on {}",
                cfg.sft.steps,
                assets.join("sft.jsonl").display()
            ),
        );
        let s = sft::run(
            sft::SftJob {
                init: pre_dir.clone(),
                data: assets.join("sft.jsonl"),
                train: cfg.sft.clone(),
                val_fraction: 0.05,
                dropout: None,
                out: sft_dir.clone(),
                resume: true,
            },
            device,
        )?;
        stage_line(
            3,
            n,
            "sft",
            &format!(
                "done in {:.1}s: held-out response loss {:.3} -> {:.3}",
                t0.elapsed().as_secs_f64(),
                s.first_eval_loss,
                s.final_eval_loss
            ),
        );
    }

    // 4. sample K responses per prompt
    let samples = out.join("samples.jsonl");
    if samples.is_file() {
        stage_line(4, n, "sample", "already done, skipped");
    } else {
        let t0 = Instant::now();
        stage_line(
            4,
            n,
            "sample",
            &format!(
                "{} responses for each of {} prompts",
                cfg.k, cfg.sample_prompts
            ),
        );
        sample::run(
            &sample::SampleJob {
                ckpt: sft_dir.clone(),
                prompts: assets.join("prompts.jsonl"),
                k: cfg.k,
                out: samples.clone(),
                sampling: cfg.sampling.clone(),
                seed: cfg.seed,
                batch_size: 64,
                limit: cfg.sample_prompts,
            },
            device,
        )?;
        stage_line(
            4,
            n,
            "sample",
            &format!(
                "done in {:.1}s -> {}",
                t0.elapsed().as_secs_f64(),
                samples.display()
            ),
        );
    }
    // 5. label with the simulated sentiment labeler
    let rankings = out.join("rankings.jsonl");
    if rankings.is_file() {
        stage_line(5, n, "label", "already done, skipped");
    } else {
        let lexicon = assets.join("vader/vader_lexicon.txt");
        let r = label::label_sentiment(&samples, &rankings, &lexicon, cfg.labeler_noise, cfg.seed)?;
        stage_line(5, n, "label", &format!(
            "sentiment labeler ranked {} prompts ({} skipped), agreement with the noiseless order {:.3}",
            r.ranked, r.skipped, r.agreement
        ));
    }

    // 6. reward model, normalised so the SFT samples score 0 on average (as the paper)
    let rm_dir = out.join("rm");
    if is_finished(&rm_dir) {
        stage_line(6, n, "rm", "already done, skipped");
    } else {
        let t0 = Instant::now();
        stage_line(
            6,
            n,
            "rm",
            &format!("{} steps of {} prompts", cfg.rm.steps, cfg.rm.batch_size),
        );
        let s = rm::run(
            rm::RmJob {
                init: sft_dir.clone(),
                data: rankings.clone(),
                out: rm_dir.clone(),
                train: cfg.rm.clone(),
                val_fraction: 0.1,
                skip_invalid: false,
                norm_samples: Some(samples.clone()),
                resume: true,
            },
            device,
        )?;
        stage_line(
            6,
            n,
            "rm",
            &format!(
                "done in {:.1}s: held-out pairwise accuracy {:.3} -> {:.3}",
                t0.elapsed().as_secs_f64(),
                s.first_eval.accuracy,
                s.final_eval.accuracy
            ),
        );
    }
    eprintln!(
        "pipeline finished in {:.1}s: {}",
        t_all.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(out.to_path_buf())
}
