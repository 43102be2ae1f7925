//! `rlhf sft`: supervised fine-tuning on prompt → response demonstrations with the prompt
//! template; the loss counts response tokens only.

use super::lm_train::{BatchSource, LmStage, StageSummary};
use crate::checkpoint::{self, CheckpointConfig, CheckpointKind};
use crate::config::TrainConfig;
use crate::data::batching::{sft_batch, tokenize_sft, Batch, SftExample};
use crate::data::formats::read_sft;
use crate::util::rng::Rng;
use anyhow::{bail, Result};
use burn::prelude::*;
use std::path::PathBuf;

struct Demos {
    train: Vec<SftExample>,
    b: usize,
    pad: u32,
    eval: Vec<Batch>,
}

impl BatchSource for Demos {
    fn train_batch(&self, rng: &mut Rng) -> Result<Batch> {
        let picks: Vec<&SftExample> = (0..self.b)
            .map(|_| &self.train[rng.below(self.train.len())])
            .collect();
        Ok(sft_batch(&picks, self.pad))
    }
    fn eval_batches(&self) -> &[Batch] {
        &self.eval
    }
}

pub struct SftJob {
    pub init: PathBuf,
    pub data: PathBuf,
    pub train: TrainConfig,
    pub val_fraction: f64,
    pub dropout: Option<f64>,
    pub out: PathBuf,
    /// Train LoRA adapters of these settings instead of every weight (a LoRA `init` trains
    /// its own adapters on without them).
    pub lora: Option<crate::config::lora::LoraConfig>,
    pub resume: bool,
}

pub fn run(job: SftJob, device: &Device) -> Result<StageSummary> {
    let loaded = checkpoint::load_lm(&job.init, device)?;
    let mut mcfg = loaded.config.model.clone();
    if let Some(d) = job.dropout {
        mcfg.dropout = d;
    }
    let records = read_sft(&job.data)?;
    let (mut examples, cut) = tokenize_sft(&loaded.tok, &records, mcfg.n_ctx)?;
    if cut > 0 {
        eprintln!(
            "sft: warning: {cut} of {} demonstrations were longer than the context ({} tokens) \
             and were cut, the prompt from the left",
            examples.len(),
            mcfg.n_ctx
        );
    }
    let mut rng = Rng::new(job.train.seed ^ 0x5f7);
    rng.shuffle(&mut examples);
    let n_val = ((examples.len() as f64 * job.val_fraction) as usize).max(1);
    if examples.len() <= n_val {
        bail!(
            "{}: {} demonstrations are too few to hold {} out (--val-fraction {}) and train on \
             the rest; give more demonstrations, or lower --val-fraction",
            job.data.display(),
            examples.len(),
            n_val,
            job.val_fraction
        );
    }
    let val: Vec<SftExample> = examples.split_off(examples.len() - n_val);
    let eval: Vec<Batch> = val
        .chunks(job.train.batch_size)
        .take(job.train.eval_batches)
        .map(|c| sft_batch(&c.iter().collect::<Vec<_>>(), loaded.tok.eot))
        .collect();
    eprintln!(
        "sft: {} train / {} held-out demonstrations from {}",
        examples.len(),
        val.len(),
        job.data.display()
    );
    let model = match job.dropout {
        Some(d) => loaded.model.with_dropout(d),
        None => loaded.model,
    };
    let (model, lora) = crate::stages::lora::adapt(
        model,
        (&loaded.dir, &loaded.config),
        job.lora.as_ref(),
        job.train.seed,
        device,
    )?;
    let data = Demos {
        train: examples,
        b: job.train.batch_size,
        pad: loaded.tok.eot,
        eval,
    };
    let stage = LmStage {
        name: "sft",
        out: &job.out,
        cfg: &job.train,
        ckpt_config: CheckpointConfig {
            kind: CheckpointKind::Lm,
            stage: "sft".into(),
            model: mcfg,
            reward_bias: None,
            reward_gain: None,
            lora,
        },
        tok: &loaded.tok,
        device,
        resume: job.resume,
    };
    let (_, summary) = stage.run(model, &data)?;
    Ok(summary)
}
