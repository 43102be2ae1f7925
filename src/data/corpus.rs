//! Raw-text corpora as token streams: each file tokenized (paragraph groups, documents closed
//! by `<|endoftext|>`), its last `val_fraction` held out. Pretraining, PPO's pretraining mix and
//! the held-out perplexity of eval all read text this way.

use super::tokenizer::Tok;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// Train and held-out token streams.
pub struct Streams {
    pub train: Vec<u32>,
    pub val: Vec<u32>,
}

/// Tokenizes each file; the tail `val_fraction` of each goes to the held-out stream.
pub fn tokenize_corpus(tok: &Tok, files: &[PathBuf], val_fraction: f64) -> Result<Streams> {
    if !(0.0..1.0).contains(&val_fraction) {
        bail!("the held-out fraction must be in [0, 1), got {val_fraction}");
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for f in files {
        let text = super::formats::read_text(f).context("reading the corpus")?;
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
