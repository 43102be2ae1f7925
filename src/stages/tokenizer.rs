//! `rlhf tokenizer train`: byte-level BPE on a corpus, saved as `tokenizer.json`.

use crate::data::tokenizer;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub fn train(corpus: &[PathBuf], vocab_size: usize, out: &Path) -> Result<()> {
    let t0 = Instant::now();
    let tok = tokenizer::train(corpus, vocab_size)?;
    crate::util::fs::create_parent_dir(out)?;
    tok.save(out)?;
    eprintln!(
        "tokenizer: {} tokens from {} files in {:.1}s -> {}",
        tok.vocab_size(),
        corpus.len(),
        t0.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
