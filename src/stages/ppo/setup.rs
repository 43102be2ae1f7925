//! Setting up a PPO run: loading the frozen models and data, the trained models (fresh from
//! SFT and the RM, or from the run's checkpoint when resuming), and writing that checkpoint.

use super::config::Algo;
use super::job::{PpoJob, RewardSource};
use super::{Critic, Learner, Scorer};
use crate::checkpoint::{self, CheckpointConfig, CheckpointKind, SaveRequest, TrainState};
use crate::config::lora::LoraBase;
use crate::config::ModelConfig;
use crate::data::corpus::tokenize_corpus;
use crate::data::formats::read_prompts;
use crate::data::pairs::fit_prompt;
use crate::data::tokenizer::Tok;
use crate::model::{Lm, RewardModel};
use crate::rl::KlController;
use crate::stages::lora;
use crate::train::optim::adamw;
use crate::train::run::StageRun;
use crate::train::trainer::Start;
use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

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
    pub start: Option<Lm>,
    pub reference: Lm,
    pub scorer: Scorer,
    /// The reward model as loaded (on the training device) and its normalisation bias, when
    /// the reward is a model: a fresh value model starting from it shares its weights.
    pub rm: Option<(RewardModel, f32)>,
    pub prompts: Vec<Vec<u32>>,
    pub ptx: Option<Vec<u32>>,
    pub model_cfg: ModelConfig,
    /// The LoRA records of the policy's and the value model's checkpoints, and the configs of
    /// the checkpoints they start from (None: every weight trains).
    pub lora: LoraPlan,
}

/// Where LoRA adapters come from in a run (see `stages::lora::plan`).
pub(super) struct LoraPlan {
    pub policy: Option<LoraBase>,
    pub policy_init: CheckpointConfig,
    pub value: Option<LoraBase>,
    pub value_init: Option<CheckpointConfig>,
}

/// The LoRA plan of a run: the policy's start and the value model's (a reward model, or with a
/// token-count reward the policy's start).
fn lora_plan(job: &PpoJob, policy_start: (&Path, &CheckpointConfig)) -> Result<LoraPlan> {
    let want = job.lora.as_ref();
    let policy = lora::plan(policy_start, want).context("the policy's LoRA adapters")?;
    let value_src = match (&job.value_init, &job.reward) {
        _ if job.cfg.algo == Algo::Rloo => None,
        (Some(p), _) | (None, RewardSource::Model(p)) => Some(checkpoint::resolve(p)?),
        (None, RewardSource::TokenCount { .. }) => None,
    };
    let (value, value_init) = match value_src {
        Some(dir) => {
            let c: CheckpointConfig = crate::config::load_json(&dir.join("config.json"))?;
            let v = lora::plan((&dir, &c), want).context("the value model's LoRA adapters")?;
            (v, Some(c))
        }
        None => (policy.clone(), Some(policy_start.1.clone())),
    };
    Ok(LoraPlan {
        policy,
        policy_init: policy_start.1.clone(),
        value,
        value_init,
    })
}

/// The reward: a reward model's score (its normalisation bias included) or a token count; and
/// the reward model as loaded, with its bias.
fn load_scorer(
    job: &PpoJob,
    tok: &Tok,
    n_ctx: usize,
    device: &Device,
) -> Result<(Scorer, Option<(RewardModel, f32)>)> {
    Ok(match &job.reward {
        RewardSource::Model(p) => {
            let rm = checkpoint::load_rm(p, device)?;
            if rm.tok.vocab_size() != tok.vocab_size() || rm.config.model.n_ctx < n_ctx {
                bail!(
                    "the reward model {} does not match the policy's tokenizer or context",
                    p.display()
                );
            }
            let bias = rm.config.reward_bias.unwrap_or(0.0) as f32;
            if rm.config.reward_gain.is_none() {
                // the cap, EOS penalty and β are in sd of a normalised RM's scores
                eprintln!(
                    "ppo: warning: the reward model {} is not scale-normalised (saved before \
                     `rlhf rm` normalised scores to sd 1, or imported), so --reward-clip, \
                     --missing-eos-penalty and --kl-coef act on its raw scale; `rlhf rm --resume` \
                     with its --out normalises a finished one",
                    p.display()
                );
            }
            let scorer = Scorer::Model {
                rm: Box::new(rm.model.valid()),
                bias,
            };
            (scorer, Some((rm.model, bias)))
        }
        RewardSource::TokenCount { text, scale } => {
            let ids = tok.encode(text)?;
            if ids.len() != 1 {
                bail!("reward token {text:?} is {} tokens, not one", ids.len());
            }
            let scorer = Scorer::TokenCount {
                token: ids[0],
                scale: *scale,
            };
            (scorer, None)
        }
    })
}

/// The prompts, rendered and tokenized, each cut to leave room for a response.
fn load_prompts(job: &PpoJob, tok: &Tok, n_ctx: usize) -> Result<Vec<Vec<u32>>> {
    let prompts = read_prompts(&job.prompts)?
        .iter()
        .map(|p| {
            let ids = tok.prompt_ids(p)?;
            Ok(fit_prompt(&ids, job.cfg.max_new_tokens, n_ctx))
        })
        .collect::<Result<Vec<_>>>()?;
    if prompts.is_empty() {
        bail!("{}: no prompts", job.prompts.display());
    }
    Ok(prompts)
}

/// The pretraining token stream of ptx (none when `ptx_coef` is 0).
fn load_ptx(job: &PpoJob, tok: &Tok) -> Result<Option<Vec<u32>>> {
    let cfg = &job.cfg;
    if cfg.ptx_coef <= 0.0 {
        return Ok(None);
    }
    if job.ptx_corpus.is_empty() {
        bail!(
            "--ptx-coef {} needs --ptx-corpus files (or use --ptx-coef 0 for plain PPO)",
            cfg.ptx_coef
        );
    }
    Ok(Some(tokenize_corpus(tok, &job.ptx_corpus, 0.0)?.train))
}

/// The policy's start when it is not the reference: same architecture and vocabulary.
fn load_start(
    job: &PpoJob,
    reference: &checkpoint::Loaded,
    ref_path: &std::path::Path,
    device: &Device,
) -> Result<Lm> {
    let p = checkpoint::load_lm(&job.policy, device)?;
    if p.config.model != reference.config.model || p.tok.vocab_size() != reference.tok.vocab_size()
    {
        bail!(
            "the policy {} and the reference {} have different architectures",
            job.policy.display(),
            ref_path.display()
        );
    }
    Ok(p.model)
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
    let (scorer, rm) = load_scorer(job, &tok, n_ctx, device)?;
    let prompts = load_prompts(job, &tok, n_ctx)?;
    let ptx = load_ptx(job, &tok)?;
    let start = match &job.reference {
        Some(_) => Some(load_start(job, &sft, ref_path, device)?),
        None => None,
    };
    let policy_dir = checkpoint::resolve(&job.policy)?;
    let policy_cfg: CheckpointConfig = crate::config::load_json(&policy_dir.join("config.json"))?;
    let lora = lora_plan(job, (&policy_dir, &policy_cfg))?;
    Ok(Fixed {
        start,
        model_cfg: sft.config.model.clone(),
        tok,
        reference: sft.model.valid(),
        scorer,
        rm,
        prompts,
        ptx,
        lora,
    })
}

/// The learner and state at the start: fresh from SFT/RM, or from `out/ckpt` when resuming
/// (the value model and its optimizer from `out/ckpt/value`, the KL controller from the
/// checkpoint's state). RLOO has no value model.
pub(super) fn initial_learner(
    run: &StageRun,
    job: &PpoJob,
    fixed: &Fixed,
    device: &Device,
) -> Result<(Learner, Start, Extra)> {
    let cfg = &job.cfg;
    let optim = || adamw(cfg.beta2, 0.0);
    let with_critic = cfg.algo == Algo::Ppo;
    let fresh = || fresh_models(job, fixed, device);
    let load = |dir: &Path| {
        let p = checkpoint::load_lm(dir, device)?;
        checkpoint::check_same_tokenizer(dir, &p.tok, &fixed.tok)?;
        let critic = match with_critic {
            true => {
                let v = checkpoint::load_rm(&dir.join("value"), device)?;
                let (value, vopt, _) =
                    checkpoint::load_resume(&dir.join("value"), v.model, optim())?;
                Some(Critic {
                    model: value,
                    bias: v.config.reward_bias.unwrap_or(0.0) as f32,
                    optim: vopt,
                })
            }
            false => None,
        };
        Ok((p.model, critic))
    };
    let begun = run.start((job.resume, cfg.seed), optim(), fresh, load)?;
    // the KL controller and episode count ride in the loop state
    let extra = match &begun.start.resumed {
        Some(dir) => serde_json::from_value(begun.start.state.extra.clone())
            .with_context(|| format!("{}: PPO state", dir.join("train_state.json").display()))?,
        None => Extra {
            kl: cfg.kl_controller(),
            episodes: 0,
        },
    };
    let learner = Learner {
        policy: begun.model.with_dropout(0.0).train(),
        policy_optim: begun.optim,
        critic: begun.extra.map(|c| Critic {
            model: c.model.with_dropout(0.0).train(),
            ..c
        }),
    };
    Ok((learner, begun.start, extra))
}

/// The policy and (PPO) the value model of a fresh run: the policy's start, the value model's
/// reward model, each with fresh LoRA adapters where the run starts them.
fn fresh_models(job: &PpoJob, fixed: &Fixed, device: &Device) -> Result<(Lm, Option<Critic>)> {
    let (cfg, plan) = (&job.cfg, &fixed.lora);
    let policy = fixed
        .start
        .clone()
        .unwrap_or_else(|| fixed.reference.clone());
    // a clone shares the reference's tensors: with LoRA the frozen weights are held once
    let policy = lora::apply(
        policy,
        &plan.policy_init,
        plan.policy.as_ref(),
        cfg.seed,
        device,
    );
    if cfg.algo != Algo::Ppo {
        return Ok((policy, None));
    }
    // shared only when its weights stay frozen: a fully trained value model's would diverge
    // from the scorer's at the first update anyway
    let rm = match plan.value {
        Some(_) => fixed.rm.as_ref().map(|(m, b)| (m, *b)),
        None => None,
    };
    let (mut value, bias) = initial_value(job, &fixed.reference, rm, device)?;
    if let Some(init) = &plan.value_init {
        value.transformer = lora::apply(
            value.transformer,
            init,
            plan.value.as_ref(),
            cfg.seed ^ 1,
            device,
        );
    }
    let critic = Critic {
        model: value,
        bias,
        optim: adamw(cfg.beta2, 0.0),
    };
    Ok((policy, Some(critic)))
}

/// The value model a fresh run starts from and the constant added to its values: a reward model
/// (`value_init`, else the reward model) with its normalisation bias, so V₀ predicts the scores
/// PPO is given (bias included); with a token-count reward, `reference`'s trunk with a zero head
/// and no bias. Without `value_init`, the reward model already loaded (`rm`, with its bias) is
/// used rather than read again, its weights held once (for a LoRA value model, whose base stays
/// frozen).
pub fn initial_value(
    job: &PpoJob,
    reference: &Lm,
    rm: Option<(&RewardModel, f32)>,
    device: &Device,
) -> Result<(RewardModel, f32)> {
    if let (None, Some((m, bias))) = (&job.value_init, rm) {
        let value = RewardModel {
            forwarded: Default::default(),
            ..m.clone()
        };
        return Ok((value, bias));
    }
    Ok(match (&job.value_init, &job.reward) {
        (Some(p), _) | (None, RewardSource::Model(p)) => {
            let rm = checkpoint::load_rm(p, device)
                .with_context(|| format!("loading the value model's start {}", p.display()))?;
            (rm.model, rm.config.reward_bias.unwrap_or(0.0) as f32)
        }
        (None, RewardSource::TokenCount { .. }) => {
            (RewardModel::with_zero_head(reference.clone(), device), 0.0)
        }
    })
}

/// Writes `out/ckpt/` (policy) with `out/ckpt/value/` (PPO's value model) in one atomic commit.
pub(super) fn save(
    job: &PpoJob,
    fixed: &Fixed,
    learner: &Learner,
    state: &TrainState,
) -> Result<()> {
    let policy = learner.policy.valid();
    let pcfg = CheckpointConfig {
        kind: CheckpointKind::Lm,
        stage: "ppo".into(),
        model: fixed.model_cfg.clone(),
        reward_bias: None,
        reward_gain: None,
        lora: fixed.lora.policy.clone(),
    };
    let request = SaveRequest {
        dir: &job.out,
        model: &policy,
        config: &pcfg,
        tok: &fixed.tok,
        optim: Some(&learner.policy_optim),
        state,
    };
    let Some(critic) = &learner.critic else {
        checkpoint::save_with(request, |_| Ok(()))?;
        return Ok(());
    };
    let value = critic.model.valid();
    let vcfg = CheckpointConfig {
        kind: CheckpointKind::Rm,
        stage: "ppo-value".into(),
        model: fixed.model_cfg.clone(),
        reward_bias: Some(critic.bias as f64),
        reward_gain: None,
        lora: fixed.lora.value.clone(),
    };
    checkpoint::save_with(request, |tmp| {
        checkpoint::write_parts(
            &tmp.join("value"),
            &SaveRequest {
                dir: &job.out,
                model: &value,
                config: &vcfg,
                tok: &fixed.tok,
                optim: Some(&critic.optim),
                state,
            },
        )
    })?;
    Ok(())
}
