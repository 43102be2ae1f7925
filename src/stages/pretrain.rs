//! `rlhf pretrain`: next-token prediction on raw text. Each corpus file is tokenized, documents
//! are separated by `<|endoftext|>`, and the last `val_fraction` of every file is held out.

use super::lm_train::{BatchSource, LmStage, StageSummary};
use crate::checkpoint::{CheckpointConfig, CheckpointKind};
use crate::config::ModelConfig;
use crate::config::TrainConfig;
use crate::data::batching::{random_windows, sequential_windows, Batch};
use crate::data::corpus::{tokenize_corpus, Streams};
use crate::data::tokenizer::Tok;
use crate::model::{InitRng, Lm};
use crate::util::rng::Rng;
use anyhow::{bail, Result};
use burn::prelude::*;
use std::path::PathBuf;

struct Windows {
    stream: Vec<u32>,
    b: usize,
    t: usize,
    eval: Vec<Batch>,
}

impl BatchSource for Windows {
    fn train_batch(&self, rng: &mut Rng) -> Result<Batch> {
        random_windows(&self.stream, self.b, self.t, rng)
    }
    fn eval_batches(&self) -> &[Batch] {
        &self.eval
    }
}

/// Everything `rlhf pretrain` needs.
pub struct PretrainJob {
    pub corpus: Vec<PathBuf>,
    pub tok: Tok,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub val_fraction: f64,
    pub out: PathBuf,
    pub resume: bool,
}

/// Errs, naming the corpus and what to change, unless its split leaves the `t + 2` training
/// tokens `random_windows` draws a window of `t + 1` from, and the `b·t + 1` held-out tokens of
/// one evaluation batch (`sequential_windows`).
fn check_split(job: &PretrainJob, s: &Streams, t: usize) -> Result<()> {
    let files = job
        .corpus
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let total = s.train.len() + s.val.len();
    let window = t + 2;
    if total < window {
        bail!(
            "the corpus {files} is {total} tokens long, fewer than the {window} that one \
             training window of the context ({t} tokens) needs; give a longer corpus, or a \
             smaller --n-ctx"
        );
    }
    if s.train.len() < window {
        bail!(
            "--val-fraction {} leaves {} of the {total} tokens of {files} to train on, fewer \
             than the {window} that one training window needs; lower --val-fraction",
            job.val_fraction,
            s.train.len()
        );
    }
    let b = job.train.batch_size;
    if s.val.len() < b * t + 1 {
        bail!(
            "--val-fraction {} holds out {} of the {total} tokens of {files}, fewer than the {} \
             that one held-out batch of {b}×{t} needs; raise --val-fraction or lower \
             --batch-size",
            job.val_fraction,
            s.val.len(),
            b * t + 1
        );
    }
    Ok(())
}

pub fn run(job: PretrainJob, device: &Device) -> Result<StageSummary> {
    let mut mcfg = job.model.clone();
    mcfg.vocab_size = job.tok.vocab_size();
    mcfg.validate()?;
    let streams = tokenize_corpus(&job.tok, &job.corpus, job.val_fraction)?;
    let t = mcfg.n_ctx;
    check_split(&job, &streams, t)?;
    let eval = sequential_windows(
        &streams.val,
        job.train.batch_size,
        t,
        job.train.eval_batches,
    );
    eprintln!(
        "pretrain: {} train / {} held-out tokens, model {} params ({} layers, {} wide)",
        streams.train.len(),
        streams.val.len(),
        mcfg.num_params(),
        mcfg.n_layer,
        mcfg.n_embd
    );
    let init = Lm::new(&mcfg, &mut InitRng::new(job.train.seed), device);
    let data = Windows {
        stream: streams.train,
        b: job.train.batch_size,
        t,
        eval,
    };
    let stage = LmStage {
        name: "pretrain",
        out: &job.out,
        cfg: &job.train,
        ckpt_config: CheckpointConfig {
            kind: CheckpointKind::Lm,
            stage: "pretrain".into(),
            model: mcfg,
            reward_bias: None,
            reward_gain: None,
            lora: None,
        },
        tok: &job.tok,
        device,
        resume: job.resume,
    };
    let (_, summary) = stage.run(init, &data)?;
    Ok(summary)
}
