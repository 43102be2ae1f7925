//! `rlhf label`, `rm` and `score`: rankings and the reward model.

use super::open;
use crate::cli::{LabelArgs, LabelerKind, RmArgs, ScoreArgs};
use crate::config::TrainConfig;
use crate::stages::{assets, label, rm};
use anyhow::Result;

/// `rlhf label`: the human labeler at the terminal, or the simulated sentiment labeler.
pub(super) fn label(a: LabelArgs) -> Result<()> {
    if a.labeler == LabelerKind::Human {
        return label_human(a);
    }
    let lexicon = match a.lexicon {
        Some(p) => p,
        None => assets::dir(None)?.join("vader/vader_lexicon.txt"),
    };
    let r = label::label_sentiment(
        &a.samples,
        &a.out,
        &lexicon,
        a.labeler_noise,
        a.seed,
        a.keep_ties,
    )?;
    eprintln!(
        "label: ranked {} of {} prompts ({} with fewer than 2 distinct responses skipped, \
         {} responses tied with a better one left out); \
         agreement with the noiseless labeler {:.3} -> {}",
        r.ranked,
        r.prompts,
        r.skipped,
        r.tied_dropped,
        r.agreement,
        a.out.display()
    );
    Ok(())
}

/// `rlhf label --labeler human`: a session at the terminal (the noise, lexicon, seed and tie
/// flags do not apply).
fn label_human(a: LabelArgs) -> Result<()> {
    let r = label::label_human(&a.samples, &a.out)?;
    eprintln!(
        "label: {} of {} prompts ranked ({} this session), {} skipped, {} to go, \
         {} unrankable -> {}",
        r.ranked,
        r.prompts,
        r.ranked_now,
        r.skipped,
        r.remaining,
        r.unrankable,
        a.out.display()
    );
    Ok(())
}

/// `rlhf rm`: the stage's defaults with the given flags.
pub(super) fn rm(a: RmArgs) -> Result<()> {
    let dev = open(a.device.device)?;
    let s = rm::run(
        rm::RmJob {
            lora: a.lora.config(),
            init: a.init,
            data: a.data,
            out: a.out.clone(),
            train: a.optim.apply(TrainConfig::rm()),
            val_fraction: a.val_fraction,
            skip_invalid: a.skip_invalid,
            norm_samples: a.norm_samples,
            norm_max: a.norm_max,
            dropout: a.dropout,
            resume: a.resume,
        },
        &dev.device,
    )?;
    eprintln!(
        "rm: held-out pairwise accuracy {:.3} -> {:.3}{} (95% interval over prompts), loss \
         {:.3} -> {:.3}; normalised (raw scores' sd {:.3}, mean {:+.3}) to mean 0, sd 1; \
         checkpoint in {}",
        s.first_eval.accuracy,
        s.final_eval.accuracy,
        crate::eval::table::interval(s.final_accuracy_interval, 3),
        s.first_eval.loss,
        s.final_eval.loss,
        1.0 / s.reward_gain,
        -s.reward_bias / s.reward_gain,
        a.out.join("ckpt").display()
    );
    Ok(())
}

/// `rlhf score`: one reward per response, as JSONL to `--out` or standard output.
pub(super) fn score(a: ScoreArgs) -> Result<()> {
    let dev = open(a.device.device)?;
    let rows = crate::stages::score::score_file(&a.rm, &a.data, &dev.device)?;
    match a.out {
        Some(p) => crate::data::formats::write_jsonl(&p, &rows)?,
        None => {
            for r in rows {
                println!("{r}");
            }
        }
    }
    Ok(())
}
