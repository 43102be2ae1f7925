//! Locating the bundled `assets/` directory (corpus, SFT data, prompts, VADER lexicon).

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The assets directory: `explicit` if given, else `./assets`, else the one the binary was
/// built from.
pub fn dir(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if !p.join("sft.jsonl").is_file() {
            bail!(
                "{} does not look like an assets directory (no sft.jsonl)",
                p.display()
            );
        }
        return Ok(p.to_path_buf());
    }
    let candidates = [
        PathBuf::from("assets"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets"),
    ];
    for c in candidates {
        if c.join("sft.jsonl").is_file() {
            return Ok(c);
        }
    }
    bail!(
        "cannot find the bundled assets directory; \
         run from the repository root or pass --assets DIR"
    )
}

/// The novel kept out of training, used for held-out perplexity (the alignment tax).
pub const HELD_OUT_NOVEL: &str = "persuasion.txt";

/// The Austen novels used for training (all but the held-out one), sorted.
pub fn training_corpus(assets: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(assets.join("austen"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt") && !p.ends_with(HELD_OUT_NOVEL))
        .collect();
    v.sort();
    if v.is_empty() {
        bail!("no training novels in {}", assets.join("austen").display());
    }
    Ok(v)
}
