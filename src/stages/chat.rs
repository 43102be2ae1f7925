//! `rlhf chat`: type a prompt, read the model's response; an empty line or EOF quits.

use crate::checkpoint;
use crate::data::template::render_prompt;
use crate::model::generate::{generate, SampleConfig};
use crate::util::rng::Rng;
use anyhow::{Context, Result};
use burn::prelude::*;
use std::io::{BufRead, Write};
use std::path::Path;

/// The keys that end the input at a terminal (Windows' console has no Ctrl-D).
const EOF_KEYS: &str = if cfg!(windows) {
    "Ctrl-Z then Enter"
} else {
    "Ctrl-D"
};

pub fn run(ckpt: &Path, sampling: &SampleConfig, seed: u64, device: &Device) -> Result<()> {
    let loaded = checkpoint::load_lm(ckpt, device)?;
    let model = loaded.model.valid();
    let mut rng = Rng::new(seed);
    let stdin = std::io::stdin();
    eprintln!(
        "chat with {} (empty line or {EOF_KEYS} quits)",
        loaded.dir.display()
    );
    loop {
        eprint!("> ");
        std::io::stderr().flush().ok();
        let mut line = String::new();
        // `trim` also drops the `\r` of a Windows console's `\r\n`
        let n = stdin
            .lock()
            .read_line(&mut line)
            .context("reading the terminal")?;
        if n == 0 || line.trim().is_empty() {
            return Ok(());
        }
        let ids = loaded.tok.encode(&render_prompt(line.trim()))?;
        let out = generate(
            &model,
            &[ids],
            sampling,
            loaded.tok.eot,
            &mut rng,
            true,
            device,
        )?;
        println!("{}", loaded.tok.decode(&out[0])?.trim());
    }
}
