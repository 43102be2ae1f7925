//! `rlhf pipeline`: the main job on the bundled assets — tokenizer → pretrain → SFT → sample K
//! responses per prompt → label them (simulated sentiment labeler) → reward model → PPO-ptx —
//! each stage in its own subdirectory of `--out`. Rerun on the same directory, finished stages
//! are skipped and an interrupted one resumes from its checkpoint. Each stage's wall time goes
//! to `timings.json`; the last step writes `report.md` ([`report`]).
//!
//! Here: [`run`] and its first three stages. The settings are in `config`, the rounds of
//! sample → label → RM → PPO in `rounds`, the closing evaluations in `eval`, the stage runner
//! and `timings.json` in `runner`.

mod config;
mod eval;
pub mod frontier;
pub mod report;
mod rounds;
mod runner;

pub use config::{BaseSize, PipelineConfig};
pub use runner::{StageTime, Timings, ABLATION_TAG};

use crate::checkpoint::is_finished;
use crate::data::tokenizer::Tok;
use crate::stages::{assets, pretrain, sft, tokenizer};
use anyhow::{Context, Result};
use burn::prelude::*;
use rounds::{RoundCtx, RoundPaths};
use runner::Runner;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Runs the pipeline; returns the run directory.
pub fn run(
    cfg: &PipelineConfig,
    out: &Path,
    assets_dir: Option<&Path>,
    device: &Device,
) -> Result<PathBuf> {
    // PPO runs after every other stage: a setting it refuses must stop the run before them
    cfg.ppo
        .validate()
        .context("the pipeline's PPO settings (pipeline.json \"ppo\")")?;
    if cfg.compare.contains(&frontier::Method::Rloo) {
        cfg.rloo()
            .validate()
            .context("RLOO's settings (pipeline.json \"ppo\" and \"rloo_k\")")?;
    }
    let assets = assets::dir(assets_dir)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    crate::config::save_json(cfg, &out.join("pipeline.json"))?;
    let t_all = Instant::now();
    let mut r = Runner::new(
        out.to_path_buf(),
        5 - usize::from(cfg.base.is_some())
            + 4 * cfg.rounds.max(1)
            + if cfg.ptx_ablation { 2 } else { 0 }
            + frontier::stage_count(cfg),
    );
    let corpus = assets::training_corpus(&assets)?;
    let job = Job {
        cfg,
        out,
        assets: &assets,
        corpus: &corpus,
        device,
    };
    let pre_dir = match &cfg.base {
        Some(base) => job.import_base(&mut r, base)?,
        None => {
            let tok = job.tokenizer(&mut r)?;
            job.pretrain(&mut r, &tok)?
        }
    };
    let sft_dir = job.sft(&mut r, &pre_dir)?;
    let (last, last_start) = job.rounds(&mut r, &sft_dir)?;
    job.closing(&mut r, &pre_dir, &sft_dir, &last, &last_start)?;
    eprintln!(
        "pipeline finished in {:.1}s: {}",
        t_all.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(out.to_path_buf())
}

/// What every stage of one pipeline run shares.
struct Job<'a> {
    cfg: &'a PipelineConfig,
    out: &'a Path,
    assets: &'a Path,
    /// The training novels (the tokenizer's, pretraining's and ptx's text).
    corpus: &'a [PathBuf],
    device: &'a Device,
}

impl Job<'_> {
    /// Stage "import" (`base/`): the base model a `--base` job starts from instead of its own
    /// tokenizer and pretraining, converted once into a checkpoint (one of ours is used as it
    /// is); returns the checkpoint's directory.
    fn import_base(&self, r: &mut Runner, base: &Path) -> Result<PathBuf> {
        let ours = crate::config::load_json::<serde_json::Value>(&base.join("config.json"))
            .is_ok_and(|c| c.get("kind").is_some());
        if ours {
            return Ok(base.to_path_buf());
        }
        let dir = self.out.join("base");
        r.stage(
            "import",
            dir.join("config.json").is_file(),
            format!("the base model {}", base.display()),
            || {
                let s = if base.is_dir() {
                    crate::hf::import_hf(base, &dir)?
                } else {
                    crate::hf::import_gguf(base, &dir)?
                };
                let path = dir.join("config.json");
                let mut c: crate::checkpoint::CheckpointConfig = crate::config::load_json(&path)?;
                c.model.n_ctx = c.model.n_ctx.min(self.cfg.base_ctx);
                crate::config::save_json(&c, &path)?;
                Ok(format!(
                    ": {} tensors, {} layers × {} wide, vocabulary {}, context cut to {}",
                    s.tensors, s.model.n_layer, s.model.n_embd, s.model.vocab_size, c.model.n_ctx
                ))
            },
        )?;
        Ok(dir)
    }

    /// Stage "tokenizer" (`tokenizer.json`); returns the tokenizer.
    fn tokenizer(&self, r: &mut Runner) -> Result<Tok> {
        let (cfg, corpus) = (self.cfg, self.corpus);
        let tok_path = self.out.join("tokenizer.json");
        r.stage(
            "tokenizer",
            tok_path.is_file(),
            format!(
                "training a {}-token byte-level BPE on {} novels",
                cfg.vocab_size,
                corpus.len()
            ),
            || {
                tokenizer::train(corpus, cfg.vocab_size, &tok_path)?;
                Ok(String::new())
            },
        )?;
        Tok::load(&tok_path)
    }

    /// Stage "pretrain" (`pretrain/`); returns its directory.
    fn pretrain(&self, r: &mut Runner, tok: &Tok) -> Result<PathBuf> {
        let cfg = self.cfg;
        let pre_dir = self.out.join("pretrain");
        r.stage(
            "pretrain",
            is_finished(&pre_dir),
            format!(
                "{} steps of {}×{} tokens",
                cfg.pretrain.steps, cfg.pretrain.batch_size, cfg.model.n_ctx
            ),
            || {
                let s = pretrain::run(
                    pretrain::PretrainJob {
                        corpus: self.corpus.to_vec(),
                        tok: tok.clone(),
                        model: cfg.model.clone(),
                        train: cfg.pretrain.clone(),
                        val_fraction: 0.05,
                        out: pre_dir.clone(),
                        resume: true,
                    },
                    self.device,
                )?;
                Ok(format!(
                    ": held-out loss {:.3} -> {:.3} (ppl {:.1}), {:.0} tokens/s",
                    s.first_eval_loss,
                    s.final_eval_loss,
                    s.final_eval_loss.exp(),
                    s.tokens_per_s
                ))
            },
        )?;
        Ok(pre_dir)
    }

    /// Stage "sft" (`sft/`) from the pretrained model `pre_dir`; returns its directory.
    fn sft(&self, r: &mut Runner, pre_dir: &Path) -> Result<PathBuf> {
        let cfg = self.cfg;
        let sft_dir = self.out.join("sft");
        r.stage(
            "sft",
            is_finished(&sft_dir),
            format!(
                "{} steps on {}",
                cfg.sft.steps,
                self.assets.join("sft.jsonl").display()
            ),
            || {
                let s = sft::run(
                    sft::SftJob {
                        lora: cfg.lora.clone(),
                        init: pre_dir.to_path_buf(),
                        data: self.assets.join("sft.jsonl"),
                        train: cfg.sft.clone(),
                        val_fraction: 0.05,
                        dropout: None,
                        out: sft_dir.clone(),
                        resume: true,
                    },
                    self.device,
                )?;
                Ok(format!(
                    ": held-out response loss {:.3} -> {:.3}",
                    s.first_eval_loss, s.final_eval_loss
                ))
            },
        )?;
        Ok(sft_dir)
    }

    /// Stages 4-7, then `rounds - 1` more rounds of them, each from the previous round's policy
    /// and reward model (the KL reference stays the SFT model, as in the paper). Returns what the
    /// last round produced and the policy its PPO started from (the ptx ablation starts there
    /// too).
    fn rounds(&self, r: &mut Runner, sft_dir: &Path) -> Result<(RoundPaths, PathBuf)> {
        let mut prev = RoundPaths {
            policy: sft_dir.to_path_buf(),
            rm: None,
        };
        let mut last_start = sft_dir.to_path_buf();
        for round in 1..=self.cfg.rounds.max(1) {
            let dir = if round == 1 {
                self.out.to_path_buf()
            } else {
                self.out.join(format!("round{round}"))
            };
            std::fs::create_dir_all(&dir)?;
            let ctx = RoundCtx {
                cfg: self.cfg,
                assets: self.assets,
                corpus: self.corpus,
                sft: sft_dir,
                device: self.device,
                round,
            };
            last_start = prev.policy.clone();
            prev = ctx.run(r, &dir, &prev)?;
        }
        Ok((prev, last_start))
    }

    /// The final policy against SFT on held-out prompts; with --ptx-ablation the same last PPO
    /// without ptx, for the alignment-tax comparison; with --compare the frontier; then the
    /// report.
    fn closing(
        &self,
        r: &mut Runner,
        pre_dir: &Path,
        sft_dir: &Path,
        last: &RoundPaths,
        last_start: &Path,
    ) -> Result<()> {
        let out = self.out;
        let ev = eval::EvalCtx {
            cfg: self.cfg,
            assets: self.assets,
            pretrained: pre_dir,
            sft: sft_dir,
            device: self.device,
        };
        ev.eval(
            r,
            "eval",
            &out.join("eval"),
            &last.policy,
            last.rm.as_deref(),
        )?;
        if self.cfg.ptx_ablation {
            let rm_dir = last
                .rm
                .as_deref()
                .context("the ptx ablation needs a reward model")?;
            let noptx = out.join("ppo_noptx");
            ev.ppo_without_ptx(r, self.corpus, last_start, rm_dir, &noptx)?;
            ev.eval(
                r,
                &format!("eval {ABLATION_TAG}"),
                &out.join("eval_noptx"),
                &noptx,
                Some(rm_dir),
            )?;
        }
        if !self.cfg.compare.is_empty() {
            let rm = last
                .rm
                .as_deref()
                .context("the frontier needs a reward model")?;
            frontier::FrontierCtx {
                ev: &ev,
                corpus: self.corpus,
                out,
                rm,
                start: last_start,
                ppo: &last.policy,
            }
            .run(r)?;
        }
        r.stage("report", false, "report.md and plots".into(), || {
            let p = report::write_report(out)?;
            Ok(format!(" -> {}", p.display()))
        })
    }
}
