//! `rlhf ppo`, `pipeline` and `eval`: reinforcement learning from the reward model, the whole
//! job, and the comparison of a policy with its baseline. Unset paths fall back to the bundled
//! assets.

use super::open;
use crate::cli::{BonArgs, EvalArgs, PipelineArgs, PpoArgs};
use crate::pipeline;
use crate::stages::{assets, bon, eval, ppo};
use anyhow::Result;
use std::path::PathBuf;

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

/// `rlhf pipeline`: the preset's job (`PipelineConfig::for_preset`) with the given flags.
pub(super) fn pipeline(a: PipelineArgs) -> Result<()> {
    let dev = open(a.device.device)?;
    let mut cfg = pipeline::PipelineConfig::for_preset(&a.preset, &Default::default())?;
    if let Some(k) = a.k {
        cfg.k = k;
    }
    anyhow::ensure!(a.rounds >= 1, "--rounds must be at least 1");
    cfg.rounds = a.rounds;
    if let Some(s) = a.seed {
        cfg.reseed(s);
    }
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
    for m in &a.compare {
        if !cfg.compare.contains(m) {
            cfg.compare.push(*m);
        }
    }
    if let Some(v) = a.ppo_steps {
        cfg.ppo.steps = v;
    }
    for (flag, v, steps) in [
        (
            "--pretrain-steps",
            a.pretrain_steps,
            &mut cfg.pretrain.steps,
        ),
        ("--sft-steps", a.sft_steps, &mut cfg.sft.steps),
        ("--rm-steps", a.rm_steps, &mut cfg.rm.steps),
    ] {
        if let Some(v) = v {
            anyhow::ensure!(v >= 1, "{flag} must be at least 1");
            *steps = v;
        }
    }
    let out = a.out.unwrap_or_else(default_run_dir);
    if a.no_kernels {
        crate::kernels::set_kernels_disabled(true);
        eprintln!("kernels: off (--no-kernels): the composed reference ops run");
    } else if crate::kernels::is_kernel_device(&dev.device) {
        let n = crate::stages::doctor::require_kernels(&dev.device)?.len();
        eprintln!("kernels: {n} checks against the reference twins passed on this adapter");
    }
    pipeline::run(&cfg, &out, a.assets.as_deref(), &dev.device)?;
    Ok(())
}

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
        "{}: {} iterations ({} episodes) in {:.1}s: RM score {:.3} -> {:.3}, KL {:.2} -> {:.2} nats/response, ptx loss {:.3}; policy in {}",
        cfg_algo_name, s.steps, s.episodes, s.seconds, s.first.rm_score, s.last.rm_score, s.first.kl, s.last.kl, s.last.ptx_loss, a.out.join("ckpt").display()
    );
    Ok(())
}

/// `rlhf eval`: bundled defaults for the prompts, lexicon and held-out text.
pub(super) fn eval(a: EvalArgs) -> Result<()> {
    let dev = open(a.device.device)?;
    let h = &a.held_out;
    let bundled =
        Bundled::when(h.prompts.is_none() || h.lexicon.is_none() || a.heldout_text.is_none())?;
    let asset = |p: Option<PathBuf>, rel: &str| bundled.or(p, rel);
    let job = eval::EvalJob {
        policy: a.policy,
        baseline: a.baseline,
        prompts: asset(a.held_out.prompts, "eval_prompts.jsonl"),
        lexicon: asset(a.held_out.lexicon, "vader/vader_lexicon.txt"),
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

/// `rlhf bon`: bundled defaults for the prompts and the lexicon.
pub(super) fn bon(a: BonArgs) -> Result<()> {
    let dev = open(a.device.device)?;
    let h = &a.held_out;
    let bundled = Bundled::when(h.prompts.is_none() || h.lexicon.is_none())?;
    let job = bon::BonJob {
        policy: a.policy,
        rm: a.rm,
        prompts: bundled.or(a.held_out.prompts, "eval_prompts.jsonl"),
        lexicon: bundled.or(a.held_out.lexicon, "vader/vader_lexicon.txt"),
        out: a.out.clone(),
        n_max: a.n_max,
        limit: a.n,
        sampling: crate::model::generate::SampleConfig {
            temperature: a.temperature,
            max_new_tokens: a.max_new_tokens,
            ..Default::default()
        },
        seed: a.seed,
        batch_size: a.batch_size,
    };
    bon::run(&job, &dev.device)?;
    eprintln!("bon: wrote {}", a.out.join("bon.json").display());
    Ok(())
}

/// Paths that default to files of the bundled assets, whose directory is looked up only when one
/// of them is needed.
struct Bundled(Option<PathBuf>);

impl Bundled {
    fn when(needed: bool) -> Result<Self> {
        Ok(Self(if needed {
            Some(assets::dir(None)?)
        } else {
            None
        }))
    }

    /// `p`, or the bundled file `rel`.
    fn or(&self, p: Option<PathBuf>, rel: &str) -> PathBuf {
        p.unwrap_or_else(|| self.0.as_ref().map(|d| d.join(rel)).unwrap_or_default())
    }
}
