//! Setting up a PPO run: loading the frozen models and data, the trained models (fresh from
//! SFT and the RM, or from the run's checkpoint when resuming), and writing that checkpoint.

use super::ppo::{PpoJob, RewardSource};
use super::pretrain::tokenize_corpus;
use crate::checkpoint::{self, CheckpointConfig, SaveRequest, TrainState};
use crate::data::formats::read_prompts;
use crate::data::template::render_prompt;
use crate::data::tokenizer::Tok;
use crate::model::{Gpt, RewardModel};
use crate::ppo::{fit_prompt, Learner, Scorer};
use crate::rl::KlController;
use crate::util::rng::Rng;
use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Mutable state carried across iterations and saved in `train_state.json` (`extra`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Extra {
    pub kl: KlController,
    pub episodes: usize,
}

/// The frozen parts and data of a run.
pub(super) struct Fixed {
    pub tok: Tok,
    /// The policy's start when it is not the reference.
    pub start: Option<Gpt>,
    pub reference: Gpt,
    pub scorer: Scorer,
    pub prompts: Vec<Vec<u32>>,
    pub ptx: Option<Vec<u32>>,
    pub model_cfg: crate::config::ModelConfig,
}

pub(super) fn load_fixed(job: &PpoJob, device: &Device) -> Result<Fixed> {
    let cfg = &job.cfg;
    let ref_path = job.reference.as_ref().unwrap_or(&job.policy);
    let sft = checkpoint::load_lm(ref_path, device)
        .with_context(|| format!("loading the reference from {}", ref_path.display()))?;
    let tok = sft.tok.clone();
    let n_ctx = sft.config.model.n_ctx;
    if cfg.max_new_tokens + 2 > n_ctx {
        bail!(
            "--max-new-tokens {} leaves no room for a prompt in a context of {n_ctx}",
            cfg.max_new_tokens
        );
    }
    let scorer = match &job.reward {
        RewardSource::Model(p) => {
            let rm = checkpoint::load_rm(p, device)?;
            if rm.tok.vocab_size() != tok.vocab_size() || rm.config.model.n_ctx < n_ctx {
                bail!(
                    "the reward model {} does not match the policy's tokenizer or context",
                    p.display()
                );
            }
            let bias = rm.config.reward_bias.unwrap_or(0.0) as f32;
            Scorer::Model {
                rm: Box::new(rm.model.valid()),
                bias,
            }
        }
        RewardSource::TokenCount { text, scale } => {
            let ids = tok.encode(text)?;
            if ids.len() != 1 {
                bail!("reward token {text:?} is {} tokens, not one", ids.len());
            }
            Scorer::TokenCount {
                token: ids[0],
                scale: *scale,
            }
        }
    };
    let prompts = read_prompts(&job.prompts)?
        .iter()
        .map(|p| {
            let ids = tok.encode(&render_prompt(p))?;
            Ok(fit_prompt(&ids, cfg.max_new_tokens, n_ctx))
        })
        .collect::<Result<Vec<_>>>()?;
    if prompts.is_empty() {
        bail!("{}: no prompts", job.prompts.display());
    }
    let ptx = if cfg.ptx_coef > 0.0 {
        if job.ptx_corpus.is_empty() {
            bail!(
                "--ptx-coef {} needs --ptx-corpus files (or use --ptx-coef 0 for plain PPO)",
                cfg.ptx_coef
            );
        }
        Some(tokenize_corpus(&tok, &job.ptx_corpus, 0.0)?.train)
    } else {
        None
    };
    let start = match &job.reference {
        Some(_) => {
            let p = checkpoint::load_lm(&job.policy, device)?;
            if p.config.model != sft.config.model || p.tok.vocab_size() != tok.vocab_size() {
                bail!(
                    "the policy {} and the reference {} have different architectures",
                    job.policy.display(),
                    ref_path.display()
                );
            }
            Some(p.model)
        }
        None => None,
    };
    Ok(Fixed {
        start,
        model_cfg: sft.config.model.clone(),
        tok,
        reference: sft.model.valid(),
        scorer,
        prompts,
        ptx,
    })
}

/// The learner and state at the start: fresh from SFT/RM, or from `out/ckpt` when resuming.
pub(super) fn initial_learner(
    job: &PpoJob,
    fixed: &Fixed,
    device: &Device,
) -> Result<(Learner, TrainState, Extra)> {
    let cfg = &job.cfg;
    let optim = || {
        burn::optim::AdamWConfig::new()
            .with_beta_2(cfg.beta2 as f32)
            .with_weight_decay(0.0)
            .with_epsilon(1e-8)
            .init()
    };
    let ckpt = job.out.join("ckpt");
    if job.resume && checkpoint::resolve(&job.out).is_ok() {
        let dir = checkpoint::resolve(&job.out)?;
        let p = checkpoint::load_lm(&dir, device)?;
        let v = checkpoint::load_rm(&dir.join("value"), device)?;
        let (policy, popt, state) = checkpoint::load_resume(&dir, p.model, optim())?;
        let (value, vopt, _) = checkpoint::load_resume(&dir.join("value"), v.model, optim())?;
        let extra: Extra = serde_json::from_value(state.extra.clone())
            .with_context(|| format!("{}: PPO state", dir.join("train_state.json").display()))?;
        eprintln!(
            "ppo: resuming from {} at iteration {}",
            ckpt.display(),
            state.step
        );
        let l = Learner {
            policy: policy.with_dropout(0.0),
            value: value.with_dropout(0.0),
            policy_optim: popt,
            value_optim: vopt,
        };
        return Ok((l, state, extra));
    }
    let policy = fixed
        .start
        .clone()
        .unwrap_or_else(|| fixed.reference.clone());
    let value = match (&job.value_init, &job.reward) {
        (Some(p), _) | (None, RewardSource::Model(p)) => checkpoint::load_rm(p, device)?.model,
        (None, RewardSource::TokenCount { .. }) => {
            RewardModel::value_from_trunk(fixed.reference.clone(), device)
        }
    };
    let state = TrainState {
        step: 0,
        rng: Rng::new(cfg.seed),
        finished: false,
        extra: serde_json::Value::Null,
    };
    let extra = Extra {
        kl: cfg.kl_controller(),
        episodes: 0,
    };
    let l = Learner {
        policy: policy.with_dropout(0.0),
        value: value.with_dropout(0.0),
        policy_optim: optim(),
        value_optim: optim(),
    };
    Ok((l, state, extra))
}

/// Writes `out/ckpt/` (policy) with `out/ckpt/value/` (value model) in one atomic commit.
pub(super) fn save(
    job: &PpoJob,
    fixed: &Fixed,
    learner: &Learner,
    state: &TrainState,
) -> Result<()> {
    let policy = learner.policy.valid();
    let value = learner.value.valid();
    let pcfg = CheckpointConfig {
        kind: "lm".into(),
        stage: "ppo".into(),
        model: fixed.model_cfg.clone(),
        reward_bias: None,
    };
    let vcfg = CheckpointConfig {
        kind: "rm".into(),
        stage: "ppo-value".into(),
        model: fixed.model_cfg.clone(),
        reward_bias: None,
    };
    checkpoint::save_with(
        SaveRequest {
            dir: &job.out,
            model: &policy,
            config: &pcfg,
            tok: &fixed.tok,
            optim: Some(&learner.policy_optim),
            state,
        },
        |tmp| {
            checkpoint::write_parts(
                &tmp.join("value"),
                &SaveRequest {
                    dir: &job.out,
                    model: &value,
                    config: &vcfg,
                    tok: &fixed.tok,
                    optim: Some(&learner.value_optim),
                    state,
                },
            )
        },
    )?;
    Ok(())
}
