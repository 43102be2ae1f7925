//! `rlhf ppo`: reinforcement learning of a policy against a reward model (PPO-ptx, or RLOO).
//! Unset paths fall back to the bundled assets.

use super::open;
use crate::cli::PpoArgs;
use crate::stages::{assets, ppo};
use anyhow::Result;

/// `rlhf ppo`: `PpoConfig::default()` with the given flags; prompts and the ptx corpus default
/// to the bundled assets (looked up only when one of them is needed).
pub(super) fn ppo(a: PpoArgs) -> Result<()> {
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
    if cfg.algo == ppo::Algo::Rloo && a.value_init.is_some() {
        anyhow::bail!("--value-init has no use with --algo rloo: RLOO trains no value model");
    }
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
    let cfg_algo_name = match cfg.algo {
        ppo::Algo::Ppo => "ppo",
        ppo::Algo::Rloo => "rloo",
    };
    let s = ppo::run(
        ppo::PpoJob {
            lora: a.lora.config(),
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
        "{}: {} iterations ({} episodes) in {:.1}s: RM score {:.3} -> {:.3}, \
         KL {:.2} -> {:.2} nats/response, ptx loss {:.3}; policy in {}",
        cfg_algo_name,
        s.steps,
        s.episodes,
        s.seconds,
        s.first.rm_score,
        s.last.rm_score,
        s.first.kl,
        s.last.kl,
        s.last.ptx_loss,
        a.out.join("ckpt").display()
    );
    Ok(())
}
