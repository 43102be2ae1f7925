//! One round of the pipeline in its directory: sample K responses per prompt from the current
//! policy → label them → train the reward model → PPO against it (InstructGPT iterated these).

use super::eval::run_ppo;
use super::runner::Runner;
use super::PipelineConfig;
use crate::checkpoint::is_finished;
use crate::labeler::LabelerKind;
use crate::stages::{label, rm, sample};
use anyhow::Result;
use burn::prelude::*;
use std::path::{Path, PathBuf};

/// What one round produced: the policy and the reward model the next one starts from.
pub(super) struct RoundPaths {
    pub policy: PathBuf,
    pub rm: Option<PathBuf>,
}

/// What every round shares.
pub(super) struct RoundCtx<'a> {
    pub cfg: &'a PipelineConfig,
    pub assets: &'a Path,
    pub corpus: &'a [PathBuf],
    pub sft: &'a Path,
    pub device: &'a Device,
    pub round: usize,
}

impl RoundCtx<'_> {
    /// Sample → label → RM → PPO in `dir`.
    pub(super) fn run(&self, r: &mut Runner, dir: &Path, prev: &RoundPaths) -> Result<RoundPaths> {
        let cfg = self.cfg;
        let tag = |name: &str| {
            if self.round == 1 {
                name.to_string()
            } else {
                format!("{name} (round {})", self.round)
            }
        };
        let samples = dir.join("samples.jsonl");
        r.stage(
            &tag("sample"),
            samples.is_file(),
            format!(
                "{} responses for each of {} prompts",
                cfg.k,
                match cfg.sample_prompts {
                    0 => "the".to_string(),
                    n => format!("the first {n}"),
                }
            ),
            || self.sample(&prev.policy, &samples),
        )?;
        let rankings = dir.join("rankings.jsonl");
        let human = cfg.labeler == LabelerKind::Human;
        let progress = crate::labeler::human_store::progress_path(&rankings);
        r.stage(
            &tag("label"),
            // a human session resumes until every prompt is ranked or skipped
            rankings.is_file() && (!human || self.human_done(&samples, &rankings)?),
            if human {
                format!(
                    "rank the samples yourself (saved as you go in {})",
                    progress.display()
                )
            } else {
                "simulated sentiment labeler (VADER lexicon)".into()
            },
            || self.label(&samples, &rankings),
        )?;
        if human && !self.human_done(&samples, &rankings)? {
            anyhow::bail!(
                "labeling stopped before every prompt was ranked; \
                 rerun the same command to continue"
            );
        }
        let rm_dir = dir.join("rm");
        let rm_init = prev.rm.clone().unwrap_or_else(|| self.sft.to_path_buf());
        r.stage(
            &tag("rm"),
            is_finished(&rm_dir),
            format!("{} steps of {} prompts", cfg.rm.steps, cfg.rm.batch_size),
            || self.rm(&rm_init, &rankings, &samples, &rm_dir),
        )?;
        let ppo_dir = dir.join("ppo");
        let p = &cfg.ppo;
        r.stage(
            &tag("ppo"),
            is_finished(&ppo_dir),
            format!(
                "{} iterations of {} episodes, β {}, ptx {}",
                p.steps, p.rollout_batch, p.kl_coef, p.ptx_coef
            ),
            || self.ppo(&prev.policy, &rm_dir, &ppo_dir),
        )?;
        Ok(RoundPaths {
            policy: ppo_dir,
            rm: Some(rm_dir),
        })
    }

    fn sample(&self, policy: &Path, samples: &Path) -> Result<String> {
        let cfg = self.cfg;
        sample::run(
            &sample::SampleJob {
                ckpt: policy.to_path_buf(),
                prompts: self.assets.join("prompts.jsonl"),
                k: cfg.k,
                out: samples.to_path_buf(),
                sampling: cfg.sampling.clone(),
                seed: cfg.seed.wrapping_add(self.round as u64 - 1),
                batch_size: 64,
                limit: cfg.sample_prompts,
            },
            self.device,
        )?;
        Ok(format!(" -> {}", samples.display()))
    }

    /// True when a human labeling session has nothing left to show.
    fn human_done(&self, samples: &Path, rankings: &Path) -> Result<bool> {
        if !crate::labeler::human_store::progress_path(rankings).is_file() {
            return Ok(false);
        }
        let recs = crate::data::formats::read_samples(samples)?;
        let r =
            crate::labeler::human::run_session(&recs, rankings, std::io::empty(), std::io::sink())?;
        Ok(r.remaining == 0)
    }

    fn label(&self, samples: &Path, rankings: &Path) -> Result<String> {
        if self.cfg.labeler == LabelerKind::Human {
            let h = label::label_human(samples, rankings)?;
            return Ok(format!(
                ": {} ranked, {} skipped, {} left",
                h.ranked, h.skipped, h.remaining
            ));
        }
        let lexicon = self.assets.join("vader/vader_lexicon.txt");
        let l = label::label_sentiment(
            samples,
            rankings,
            &lexicon,
            self.cfg.labeler_noise,
            self.cfg.seed,
            false,
        )?;
        Ok(format!(
            ": ranked {} prompts ({} skipped, {} tied responses left out), \
             agreement with the noiseless order {:.3}",
            l.ranked, l.skipped, l.tied_dropped, l.agreement
        ))
    }

    /// The RM is normalised so this round's samples score 0 on average (as the paper).
    fn rm(&self, init: &Path, rankings: &Path, samples: &Path, out: &Path) -> Result<String> {
        let s = rm::run(
            rm::RmJob {
                lora: None,
                init: init.to_path_buf(),
                data: rankings.to_path_buf(),
                out: out.to_path_buf(),
                train: self.cfg.rm.clone(),
                val_fraction: 0.1,
                skip_invalid: false,
                norm_samples: Some(samples.to_path_buf()),
                norm_max: rm::DEFAULT_NORM_MAX,
                dropout: self.cfg.rm_dropout,
                resume: true,
            },
            self.device,
        )?;
        Ok(format!(
            ": held-out pairwise accuracy {:.3} -> {:.3}{}",
            s.first_eval.accuracy,
            s.final_eval.accuracy,
            crate::eval::table::interval(s.final_accuracy_interval, 3)
        ))
    }

    fn ppo(&self, policy: &Path, rm_dir: &Path, out: &Path) -> Result<String> {
        run_ppo(
            self.assets,
            self.corpus,
            self.sft,
            (policy, rm_dir, out),
            self.cfg.ppo.clone(),
            self.device,
        )
    }
}
