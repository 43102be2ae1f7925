//! `rlhf eval` and `bon`: a policy compared with its baseline on held-out prompts, and the
//! best-of-n frontier of the SFT model. Unset paths fall back to the bundled assets.

use super::open;
use crate::cli::{BonArgs, EvalArgs};
use crate::stages::{assets, bon, eval};
use anyhow::Result;
use std::path::PathBuf;

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
        samples_per_prompt: a.samples_per_prompt,
        sampling: a.sampling.config(),
        seed: a.sampling.seed,
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
