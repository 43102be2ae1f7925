//! Stage tests on the tiny preset: pretraining lowers held-out loss. (Resuming a killed stage
//! is tested through the binary in `tests/commands/recovery.rs`.)

use crate::common;

use burn::prelude::*;
use rlhf::config::ModelConfig;
use rlhf::config::TrainConfig;
use rlhf::stages::pretrain::{self, PretrainJob};

#[test]
fn tiny_pretraining_lowers_held_out_loss() {
    let tok = common::tok();
    let d = common::tmp_dir("pretrain");
    let text = std::fs::read_to_string(common::assets().join("austen/emma.txt")).unwrap();
    let f = d.join("corpus.txt");
    std::fs::write(&f, text.chars().take(200_000).collect::<String>()).unwrap();
    let mut train = TrainConfig::pretrain();
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

#[test]
fn sentiment_labeler_ranks_most_positive_first_and_reports_agreement() {
    let d = common::tmp_dir("label");
    let s = d.join("samples.jsonl");
    std::fs::write(
        &s,
        "{\"prompt\":\"p1\",\"responses\":[\"It was a terrible day.\",\"It was a good day.\",\
         \"It was a day.\",\"It was a wonderful, happy day!\"]}\n\
         {\"prompt\":\"p2\",\"responses\":[\"same\",\"same\"]}\n\
         {\"prompt\":\"p3\",\"responses\":[\"A chair.\",\"Good.\",\"A table.\",\"Bad.\"]}\n\
         {\"prompt\":\"p4\",\"responses\":[\"A chair.\",\"A table.\"]}\n",
    )
    .unwrap();
    let lex = common::assets().join("vader/vader_lexicon.txt");
    let out = d.join("rankings.jsonl");
    let rep = rlhf::stages::label::label_sentiment(&s, &out, &lex, 0.0, 1, false).unwrap();
    // p2 has one distinct response; p4's two responses tie at compound 0, so one is left and the
    // prompt cannot be ranked; p3's neutral pair keeps only its first ("A chair.")
    assert_eq!((rep.prompts, rep.ranked, rep.skipped), (4, 2, 2));
    assert_eq!(rep.tied_dropped, 2);
    assert_eq!(rep.agreement, 1.0);
    let (r, _) = rlhf::data::rankings::read_rankings(&out, false).unwrap();
    assert_eq!(
        r[0].responses,
        vec![
            "It was a wonderful, happy day!",
            "It was a good day.",
            "It was a day.",
            "It was a terrible day."
        ]
    );
    assert_eq!(r[1].responses, vec!["Good.", "A chair.", "Bad."]);
    // --keep-ties writes the tie in sample order instead
    rlhf::stages::label::label_sentiment(&s, &out, &lex, 0.0, 1, true).unwrap();
    let (r, _) = rlhf::data::rankings::read_rankings(&out, false).unwrap();
    assert_eq!(
        r[1].responses,
        vec!["Good.", "A chair.", "A table.", "Bad."]
    );
    assert_eq!(r[2].responses, vec!["A chair.", "A table."]);
    // with noise the agreement drops below 1 on many prompts
    let many: String = (0..200)
        .map(|i| {
            format!("{{\"prompt\":\"p{i}\",\"responses\":[\"bad\",\"good\",\"great\",\"okay\"]}}\n")
        })
        .collect();
    std::fs::write(&s, many).unwrap();
    let rep = rlhf::stages::label::label_sentiment(&s, &out, &lex, 0.5, 1, false).unwrap();
    assert!(
        rep.agreement > 0.55 && rep.agreement < 0.95,
        "agreement {}",
        rep.agreement
    );
}
