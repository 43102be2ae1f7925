//! The pipeline's closing stages: a policy against SFT on the held-out prompts (`eval/`), and the
//! optional ptx ablation — the last round's PPO again without the pretraining mix
//! (`ppo_noptx/`), evaluated the same way (`eval_noptx/`) — whose held-out perplexities put
//! the alignment tax with and without ptx side by side in `report.md`.

use super::runner::{Runner, ABLATION_TAG};
use super::PipelineConfig;
use crate::stages::{assets, eval, ppo};
use anyhow::Result;
use burn::prelude::*;
use std::path::{Path, PathBuf};

/// What the closing stages share.
pub(super) struct EvalCtx<'a> {
    pub cfg: &'a PipelineConfig,
    pub assets: &'a Path,
    pub pretrained: &'a Path,
    pub sft: &'a Path,
    pub device: &'a Device,
}

impl EvalCtx<'_> {
    /// Stage `name`: `policy` against SFT into `dir` (skipped when `dir/eval.json` exists), both
    /// sampled as `rlhf eval` samples by default (temperature 0.7).
    pub fn eval(
        &self,
        r: &mut Runner,
        name: &str,
        dir: &Path,
        policy: &Path,
        rm: Option<&Path>,
    ) -> Result<()> {
        let what = "PPO policy vs SFT on held-out prompts (win rate, KL, perplexity, guards)";
        self.eval_sampled(r, (name, what), dir, (policy, rm), eval::default_sampling())
    }

    /// Stage `name` (doing `what`): `policy` against SFT into `dir`, both sampled with
    /// `sampling` (skipped when `dir/eval.json` exists).
    pub fn eval_sampled(
        &self,
        r: &mut Runner,
        (name, what): (&str, &str),
        dir: &Path,
        (policy, rm): (&Path, Option<&Path>),
        sampling: crate::model::generate::SampleConfig,
    ) -> Result<()> {
        let cfg = self.cfg;
        r.stage(name, dir.join("eval.json").is_file(), what.into(), || {
            let e = eval::run(
                &eval::EvalJob {
                    policy: policy.to_path_buf(),
                    baseline: self.sft.to_path_buf(),
                    prompts: self.assets.join("eval_prompts.jsonl"),
                    lexicon: self.assets.join("vader/vader_lexicon.txt"),
                    rm: rm.map(Path::to_path_buf),
                    pretrained: Some(self.pretrained.to_path_buf()),
                    heldout_text: self.assets.join("austen").join(assets::HELD_OUT_NOVEL),
                    ppl_windows: cfg.eval_ppl_windows,
                    out: dir.to_path_buf(),
                    n: cfg.eval_prompts,
                    samples_per_prompt: cfg.eval_samples_per_prompt,
                    sampling,
                    seed: cfg.seed,
                    batch_size: 64,
                },
                self.device,
            )?;
            Ok(format!(
                ": win rate {:.3} over SFT, KL {:.2} nats/response, held-out ppl {:.1} -> {:.1}",
                e.win_rate.rate, e.kl_nats_per_seq, e.baseline.heldout_ppl, e.policy.heldout_ppl
            ))
        })
    }

    /// Stage "ppo (no ptx)": the last round's PPO (same start, RM, seed and settings) with
    /// γ_ptx = 0, into `out`.
    pub fn ppo_without_ptx(
        &self,
        r: &mut Runner,
        corpus: &[PathBuf],
        start: &Path,
        rm_dir: &Path,
        out: &Path,
    ) -> Result<()> {
        let mut cfg = self.cfg.ppo.clone();
        cfg.ptx_coef = 0.0;
        r.stage(
            &format!("ppo {ABLATION_TAG}"),
            crate::checkpoint::is_finished(out),
            format!(
                "the same {} iterations without the pretraining mix (alignment-tax baseline)",
                cfg.steps
            ),
            || {
                run_ppo(
                    self.assets,
                    corpus,
                    self.sft,
                    (start, rm_dir, out),
                    cfg,
                    self.device,
                )
            },
        )
    }
}

/// PPO from `start` against the reward model `rm_dir` into `out`, SFT the KL reference, the
/// bundled prompts and the training novels as ptx corpus; returns the stage's closing line.
pub(super) fn run_ppo(
    assets: &Path,
    corpus: &[PathBuf],
    sft: &Path,
    (start, rm_dir, out): (&Path, &Path, &Path),
    cfg: crate::stages::ppo::PpoConfig,
    device: &Device,
) -> Result<String> {
    let s = ppo::run(
        ppo::PpoJob {
            lora: None,
            policy: start.to_path_buf(),
            reference: Some(sft.to_path_buf()),
            reward: ppo::RewardSource::Model(rm_dir.to_path_buf()),
            value_init: None,
            prompts: assets.join("prompts.jsonl"),
            ptx_corpus: corpus.to_vec(),
            out: out.to_path_buf(),
            cfg,
            resume: true,
        },
        device,
    )?;
    Ok(format!(
        ": RM score {:.3} -> {:.3}, KL {:.2} nats/response",
        s.first.rm_score, s.last.rm_score, s.last.kl
    ))
}
