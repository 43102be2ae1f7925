//! `rlhf pretrain`, `sft`, `sample` and `chat`: the language-model commands.

use super::open;
use crate::cli::{ChatArgs, PretrainArgs, SampleArgs, SftArgs};
use crate::config::ModelConfig;
use crate::config::TrainConfig;
use crate::data::tokenizer::Tok;
use crate::stages::{chat, pretrain, sample, sft};
use anyhow::Result;

/// `rlhf pretrain`: the preset with its overrides, the stage's defaults with the given flags.
pub(super) fn pretrain(a: PretrainArgs) -> Result<()> {
    let dev = open(a.device.device)?;
    let tok = Tok::open(&a.tokenizer)?;
    let model = ModelConfig::preset(&a.model.preset)?.with_overrides(&a.model.overrides())?;
    let s = pretrain::run(
        pretrain::PretrainJob {
            corpus: a.corpus,
            tok,
            model,
            train: TrainConfig {
                checkpoint_activations: a.recompute.checkpoint_activations,
                ..a.optim.apply(TrainConfig::pretrain())
            },
            val_fraction: a.val_fraction,
            out: a.out.clone(),
            resume: a.resume,
        },
        &dev.device,
    )?;
    eprintln!(
        "pretrain: held-out loss {:.3} -> {:.3}; checkpoint in {}",
        s.first_eval_loss,
        s.final_eval_loss,
        a.out.join("ckpt").display()
    );
    Ok(())
}

/// `rlhf sft`: the stage's defaults with the given flags.
pub(super) fn sft(a: SftArgs) -> Result<()> {
    let dev = open(a.device.device)?;
    let s = sft::run(
        sft::SftJob {
            init: a.init,
            data: a.data,
            train: TrainConfig {
                checkpoint_activations: a.recompute.checkpoint_activations,
                ..a.optim.apply(TrainConfig::sft())
            },
            val_fraction: a.val_fraction,
            dropout: a.dropout,
            out: a.out.clone(),
            resume: a.resume,
            lora: a.lora.config(),
        },
        &dev.device,
    )?;
    eprintln!(
        "sft: held-out loss {:.3} -> {:.3}; checkpoint in {}",
        s.first_eval_loss,
        s.final_eval_loss,
        a.out.join("ckpt").display()
    );
    Ok(())
}

/// `rlhf sample`: K responses per prompt into a samples file.
pub(super) fn sample(a: SampleArgs) -> Result<()> {
    let dev = open(a.device.device)?;
    sample::run(
        &sample::SampleJob {
            ckpt: a.ckpt,
            prompts: a.prompts,
            k: a.k,
            out: a.out,
            sampling: a.sampling.config(),
            seed: a.sampling.seed,
            batch_size: a.batch_size,
            limit: a.limit,
        },
        &dev.device,
    )?;
    Ok(())
}

/// `rlhf chat`: an interactive session with a checkpoint.
pub(super) fn chat(a: ChatArgs) -> Result<()> {
    let dev = open(a.device.device)?;
    let opts = chat::ChatOptions {
        sampling: a.sampling.config(),
        seed: a.sampling.seed,
        stats: a.stats,
    };
    chat::run(&a.ckpt, &opts, &dev.device)
}
