//! Stage tests on the tiny preset: pretraining lowers held-out loss; resume continues.

mod common;

use burn::prelude::*;
use rlhf::config::ModelConfig;
use rlhf::stages::pretrain::{self, PretrainJob};

#[test]
fn tiny_pretraining_lowers_held_out_loss() {
    let tok = common::tok();
    let d = common::tmp_dir("pretrain");
    let text = std::fs::read_to_string(common::assets().join("austen/emma.txt")).unwrap();
    let f = d.join("corpus.txt");
    std::fs::write(&f, text.chars().take(200_000).collect::<String>()).unwrap();
    let mut train = pretrain::default_config();
    train.steps = 40;
    train.batch_size = 8;
    train.warmup = 5;
    train.eval_every = 20;
    train.eval_batches = 4;
    train.checkpoint_every = 20;
    let job = PretrainJob {
        corpus: vec![f],
        tok,
        model: ModelConfig::preset("tiny").unwrap(),
        train,
        val_fraction: 0.1,
        out: d.join("out"),
        resume: false,
    };
    let s = pretrain::run(job, &Device::flex()).unwrap();
    assert!(
        s.first_eval_loss > 5.5,
        "random init should be near ln(512)=6.24, got {}",
        s.first_eval_loss
    );
    assert!(
        s.final_eval_loss < s.first_eval_loss - 0.8,
        "held-out loss {} -> {}",
        s.first_eval_loss,
        s.final_eval_loss
    );
    assert!(d.join("out/ckpt/model.safetensors").is_file());
    assert!(d.join("out/ckpt/optimizer.bpk").is_file());
    let (header, rows) = rlhf::train::metrics::read(&d.join("out/metrics.csv")).unwrap();
    assert_eq!(header[1], "loss/train");
    assert_eq!(rows.len(), 40);
}
