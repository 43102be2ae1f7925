//! `rlhf chat`: type a prompt, read the model's response; an empty line or EOF quits.

use crate::checkpoint;
use crate::data::template::render_prompt;
use crate::model::generate::{generate, SampleConfig};
use crate::util::rng::Rng;
use anyhow::Result;
use burn::prelude::*;
use std::io::{BufRead, Write};
use std::path::Path;

pub fn run(ckpt: &Path, sampling: &SampleConfig, seed: u64, device: &Device) -> Result<()> {
    let loaded = checkpoint::load_lm(ckpt, device)?;
    let model = loaded.model.valid();
    let mut rng = Rng::new(seed);
    let stdin = std::io::stdin();
    eprintln!(
        "chat with {} (empty line or Ctrl-D quits)",
        loaded.dir.display()
    );
    loop {
        eprint!("> ");
        std::io::stderr().flush().ok();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
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
