//! `rlhf pretrain`: next-token prediction on raw text. Each corpus file is tokenized, documents
//! are separated by `<|endoftext|>`, and the last `val_fraction` of every file is held out.

use super::lm_train::{BatchSource, LmStage, StageSummary, TrainConfig};
use crate::checkpoint::CheckpointConfig;
use crate::config::ModelConfig;
use crate::data::batching::{random_windows, sequential_windows, Batch};
use crate::data::tokenizer::Tok;
use crate::model::Gpt;
use crate::util::rng::Rng;
use anyhow::{bail, Context, Result};
use burn::prelude::*;
use std::path::{Path, PathBuf};

/// Defaults of the pretraining stage.
pub fn default_config() -> TrainConfig {
    TrainConfig {
        steps: 600,
        batch_size: 16,
        lr: 2e-3,
        min_lr_ratio: 0.1,
        warmup: 40,
        weight_decay: 0.1,
        beta2: 0.95,
        grad_clip: 1.0,
        eval_every: 100,
        eval_batches: 8,
        checkpoint_every: 200,
        max_bad_steps: 10,
        seed: 1337,
        micro_batches: super::lm_train::default_micro_batches(),
    }
}

/// Train and held-out token streams.
pub struct Streams {
    pub train: Vec<u32>,
    pub val: Vec<u32>,
}

/// Tokenizes each file; the tail `val_fraction` of each goes to the held-out stream.
pub fn tokenize_corpus(tok: &Tok, files: &[PathBuf], val_fraction: f64) -> Result<Streams> {
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for f in files {
        let text = crate::data::formats::read_text(f).context("reading the corpus")?;
        let mut ids = Vec::new();
        // encode paragraph groups so the regex pre-tokenizer never sees one huge string
        for chunk in text.split("\n\n").collect::<Vec<_>>().chunks(64) {
            ids.extend(tok.encode(&chunk.join("\n\n"))?);
            ids.extend(tok.encode("\n\n")?);
        }
        ids.push(tok.eot);
        let n_val = ((ids.len() as f64) * val_fraction) as usize;
        let split = ids.len() - n_val;
        train.extend_from_slice(&ids[..split]);
        val.extend_from_slice(&ids[split..]);
    }
    if train.is_empty() {
        bail!("the corpus is empty");
    }
    Ok(Streams { train, val })
}

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

pub fn run(job: PretrainJob, device: &Device) -> Result<StageSummary> {
    let mut mcfg = job.model.clone();
    mcfg.vocab_size = job.tok.vocab_size();
    mcfg.validate()?;
    let streams = tokenize_corpus(&job.tok, &job.corpus, job.val_fraction)?;
    let t = mcfg.n_ctx;
    let eval = sequential_windows(
        &streams.val,
        job.train.batch_size,
        t,
        job.train.eval_batches,
    );
    if eval.is_empty() {
        bail!(
            "held-out split has {} tokens: too few for one batch of {}×{}; raise --val-fraction",
            streams.val.len(),
            job.train.batch_size,
            t
        );
    }
    eprintln!(
        "pretrain: {} train / {} held-out tokens, model {} params ({} layers, {} wide)",
        streams.train.len(),
        streams.val.len(),
        mcfg.num_params(),
        mcfg.n_layer,
        mcfg.n_embd
    );
    device.seed(job.train.seed);
    let init = Gpt::new(&mcfg, device);
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
            kind: "lm".into(),
            stage: "pretrain".into(),
            model: mcfg,
            reward_bias: None,
        },
        tok: &job.tok,
        device,
        resume: job.resume,
    };
    let (_, summary) = stage.run(init, &data)?;
    Ok(summary)
}

/// Held-out perplexity of `model` on a text file (used for the alignment tax).
pub fn file_perplexity(
    model: &Gpt,
    tok: &Tok,
    file: &Path,
    max_batches: usize,
    device: &Device,
) -> Result<f64> {
    let s = tokenize_corpus(tok, &[file.to_path_buf()], 0.0)?;
    let batches = sequential_windows(&s.train, 8, model.n_ctx(), max_batches);
    Ok(super::lm_train::eval_loss(model, &batches, device)?.exp())
}
