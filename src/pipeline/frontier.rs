//! `rlhf pipeline --compare bon,rloo,dpo`: the methods beside PPO on the reward–KL frontier.
//! After the job's own stages, each named method runs on the job's SFT model and reward model
//! (RLOO into `rloo/`, DPO into `dpo/` on the rankings the RM learned from, best-of-n into
//! `frontier/bon/`), every trained policy (PPO's included) is evaluated against SFT at
//! temperature 1 (`frontier/eval_<method>/`), and `frontier/frontier.json` collects one point per
//! method: the gold labeler's win rate over an SFT sample and its mean score against
//! KL(policy ‖ SFT), with held-out perplexity and wall time.
//!
//! Temperature 1 puts every method on one axis: best-of-n's KL bound, `ln n − (n−1)/n`, holds for
//! the SFT model's own distribution, and its baseline is a temperature-1 SFT sample; the job's
//! `eval/` (temperature 0.7, where the targets are measured) stays as it is.

use super::eval::{run_ppo, EvalCtx};
use super::runner::Runner;
use super::PipelineConfig;
use crate::eval::EvalReport;
use crate::model::generate::SampleConfig;
use crate::stages::bon::{self, BonReport};
use crate::stages::dpo;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A method run beside PPO (`--compare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Best-of-n from the SFT model, the reward model picking (`rlhf bon`), n = 2 … 64.
    Bon,
    /// RLOO (`rlhf ppo --algo rloo`) with the job's PPO settings.
    Rloo,
    /// DPO (`rlhf dpo`) on the job's rankings.
    Dpo,
}

/// Largest n best-of-n measures.
pub const BON_N_MAX: usize = 64;

/// One point of the frontier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// `SFT`, `best-of-<n>`, `PPO`, `RLOO`, `DPO`.
    pub method: String,
    /// KL(policy ‖ SFT), nats per response: for best-of-n its upper bound (reached when no two
    /// candidates tie), else estimated on the policy's samples (`rlhf eval`).
    pub kl_nats: f64,
    /// Gold labeler's win rate over a temperature-1 SFT sample (ties count half).
    pub win_rate: f64,
    /// Mean gold labeler score (VADER compound) of the method's responses.
    pub labeler_score: f64,
    /// Held-out perplexity of the model (best-of-n: the SFT model's).
    pub heldout_ppl: f64,
    /// Wall time of the method's own stage (training; for best-of-n the one sampling run all
    /// its n share), seconds; 0 for SFT.
    pub seconds: f64,
}

/// `frontier/frontier.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frontier {
    pub prompts: usize,
    /// Sampling temperature of every point.
    pub temperature: f32,
    pub points: Vec<Point>,
}

/// The sampling of the frontier's evaluations: the models' own distributions.
fn frontier_sampling() -> SampleConfig {
    SampleConfig {
        temperature: 1.0,
        ..crate::stages::eval::default_sampling()
    }
}

/// Stages `--compare` adds to the job.
pub(super) fn stage_count(cfg: &PipelineConfig) -> usize {
    if cfg.compare.is_empty() {
        return 0;
    }
    let trained = cfg.compare.iter().filter(|&&m| m != Method::Bon).count();
    // each trained method, best-of-n, an evaluation per policy (PPO's too), the table
    trained + usize::from(cfg.compare.contains(&Method::Bon)) + (1 + trained) + 1
}

/// What the frontier's stages share.
pub(super) struct FrontierCtx<'a> {
    pub ev: &'a EvalCtx<'a>,
    pub corpus: &'a [PathBuf],
    pub out: &'a Path,
    /// The last round's reward model and the policy its PPO started from.
    pub rm: &'a Path,
    pub start: &'a Path,
    /// The job's PPO policy.
    pub ppo: &'a Path,
}

impl FrontierCtx<'_> {
    /// Runs every `--compare` method, the evaluations and the table.
    pub fn run(&self, r: &mut Runner) -> Result<()> {
        let cfg = self.ev.cfg;
        let mut policies: Vec<(&str, PathBuf)> = vec![("PPO", self.ppo.to_path_buf())];
        for &m in &cfg.compare {
            match m {
                Method::Bon => self.bon(r)?,
                Method::Rloo => policies.push(("RLOO", self.rloo(r)?)),
                Method::Dpo => policies.push(("DPO", self.dpo(r)?)),
            }
        }
        for (name, policy) in &policies {
            let dir = self.eval_dir(name);
            let what = format!("{name} vs SFT at temperature 1 (the frontier's axis)");
            let stage = format!("frontier eval {}", name.to_lowercase());
            self.ev.eval_sampled(
                r,
                (&stage, &what),
                &dir,
                (policy, Some(self.rm)),
                frontier_sampling(),
            )?;
        }
        let names: Vec<&str> = policies.iter().map(|(n, _)| *n).collect();
        r.stage("frontier", false, "frontier/frontier.json".into(), || {
            let f = self.collect(&names)?;
            crate::config::save_json(&f, &self.out.join("frontier/frontier.json"))?;
            Ok(format!(": {} points", f.points.len()))
        })
    }

    fn eval_dir(&self, name: &str) -> PathBuf {
        self.out
            .join("frontier")
            .join(format!("eval_{}", name.to_lowercase()))
    }

    /// The directory a trained method's stage writes (its `summary.json` has its seconds).
    fn train_dir(&self, name: &str) -> PathBuf {
        self.out.join(name.to_lowercase())
    }

    /// Stage "bon": best-of-n from the SFT model into `frontier/bon/`.
    fn bon(&self, r: &mut Runner) -> Result<()> {
        let (ev, dir) = (self.ev, self.out.join("frontier/bon"));
        r.stage(
            "bon",
            dir.join("bon.json").is_file(),
            format!("best-of-n from SFT, n = 1 … {BON_N_MAX}, the reward model picking"),
            || {
                let b = bon::run(
                    &bon::BonJob {
                        policy: ev.sft.to_path_buf(),
                        rm: self.rm.to_path_buf(),
                        prompts: ev.assets.join("eval_prompts.jsonl"),
                        lexicon: ev.assets.join("vader/vader_lexicon.txt"),
                        out: dir.clone(),
                        n_max: BON_N_MAX,
                        limit: ev.cfg.eval_prompts,
                        sampling: frontier_sampling(),
                        seed: ev.cfg.seed,
                        batch_size: 64,
                    },
                    ev.device,
                )?;
                let last = b.rows.last().context("best-of-n measured no n")?;
                Ok(format!(
                    ": best-of-{} win rate {:.3} at KL {:.2}",
                    last.n, last.win_rate.rate, last.kl_nats
                ))
            },
        )
    }

    /// Stage "rloo": the job's PPO settings with `--algo rloo`, same start, RM and seed.
    fn rloo(&self, r: &mut Runner) -> Result<PathBuf> {
        let ev = self.ev;
        let cfg = ev.cfg.rloo();
        let out = self.train_dir("RLOO");
        r.stage(
            "rloo",
            crate::checkpoint::is_finished(&out),
            format!(
                "RLOO, {} iterations of {} prompts × {} responses, no value model",
                cfg.steps,
                cfg.rollout_batch / cfg.rloo_k,
                cfg.rloo_k
            ),
            || {
                run_ppo(
                    ev.assets,
                    self.corpus,
                    ev.sft,
                    (self.start, self.rm, &out),
                    cfg.clone(),
                    ev.device,
                )
            },
        )?;
        Ok(out)
    }

    /// Stage "dpo": DPO from SFT on the rankings the reward model learned from (the last
    /// round's, beside its `rm/`).
    fn dpo(&self, r: &mut Runner) -> Result<PathBuf> {
        let ev = self.ev;
        let cfg = ev.cfg.dpo.clone();
        let out = self.train_dir("DPO");
        let rankings = self
            .rm
            .parent()
            .context("the reward model's directory has no parent")?
            .join("rankings.jsonl");
        r.stage(
            "dpo",
            crate::checkpoint::is_finished(&out),
            format!(
                "DPO from SFT, {} steps of {} prompts on {}, β {}",
                cfg.train.steps,
                cfg.train.batch_size,
                rankings.display(),
                cfg.beta
            ),
            || {
                let s = dpo::run(
                    dpo::DpoJob {
                        lora: None,
                        init: ev.sft.to_path_buf(),
                        reference: None,
                        data: rankings.clone(),
                        out: out.clone(),
                        cfg,
                        skip_invalid: false,
                        resume: true,
                    },
                    ev.device,
                )?;
                Ok(format!(
                    ": held-out preference accuracy {:.3} -> {:.3}",
                    s.first_eval.accuracy, s.final_eval.accuracy
                ))
            },
        )?;
        Ok(out)
    }

    /// The frontier from the files the stages wrote.
    fn collect(&self, policies: &[&str]) -> Result<Frontier> {
        let read_eval = |name: &str| -> Result<EvalReport> {
            crate::config::load_json(&self.eval_dir(name).join("eval.json"))
        };
        let ppo = read_eval("PPO")?;
        let sft_ppl = ppo.baseline.heldout_ppl;
        let mut points = vec![Point {
            method: "SFT".into(),
            kl_nats: 0.0,
            win_rate: 0.5,
            labeler_score: ppo.baseline.labeler_score,
            heldout_ppl: sft_ppl,
            seconds: 0.0,
        }];
        let bon_file = self.out.join("frontier/bon/bon.json");
        if bon_file.is_file() {
            let b: BonReport = crate::config::load_json(&bon_file)?;
            points.extend(bon_points(&b, sft_ppl));
        }
        for &name in policies {
            let e = if name == "PPO" {
                ppo.clone()
            } else {
                read_eval(name)?
            };
            let dir = match name {
                "PPO" => self.ppo.to_path_buf(),
                _ => self.train_dir(name),
            };
            points.push(Point {
                method: name.to_string(),
                kl_nats: e.kl_nats_per_seq,
                win_rate: e.win_rate.rate,
                labeler_score: e.policy.labeler_score,
                heldout_ppl: e.policy.heldout_ppl,
                seconds: summary_seconds(&dir)?,
            });
        }
        Ok(Frontier {
            prompts: ppo.prompts,
            temperature: frontier_sampling().temperature,
            points,
        })
    }
}

/// Best-of-n's points for n ≥ 2 (n = 1 is the SFT model itself).
pub fn bon_points(b: &BonReport, sft_ppl: f64) -> Vec<Point> {
    b.rows
        .iter()
        .filter(|row| row.n >= 2)
        .map(|row| Point {
            method: format!("best-of-{}", row.n),
            kl_nats: row.kl_nats,
            win_rate: row.win_rate.rate,
            labeler_score: row.labeler_score,
            heldout_ppl: sft_ppl,
            seconds: b.seconds,
        })
        .collect()
}

/// The `seconds` of a stage's `summary.json`.
fn summary_seconds(dir: &Path) -> Result<f64> {
    let p = dir.join("summary.json");
    let v: serde_json::Value = crate::config::load_json(&p)?;
    v["seconds"]
        .as_f64()
        .with_context(|| format!("{}: no \"seconds\"", p.display()))
}
