//! `rlhf chat`: a conversation with a checkpoint. Each line is the user's turn; the model answers
//! with the whole conversation so far in its context (the KV cache kept between turns). When the
//! history outgrows the context the oldest exchanges are dropped, with a notice. `/reset` starts
//! over, `/save FILE` writes the conversation as one `{"messages": [...]}` JSON line; an empty line
//! or end of input quits.

pub mod session;

use crate::checkpoint;
use crate::data::formats::{write_jsonl, SftRecord};
use crate::model::generate::SampleConfig;
use anyhow::{Context, Result};
use burn::prelude::*;
use session::{ChatSession, Reply};
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

/// The keys that end the input at a terminal (Windows' console has no Ctrl-D).
const EOF_KEYS: &str = if cfg!(windows) {
    "Ctrl-Z then Enter"
} else {
    "Ctrl-D"
};

/// How `rlhf chat` runs.
pub struct ChatOptions {
    pub sampling: SampleConfig,
    pub seed: u64,
    /// Print each turn's token counts and time to stderr.
    pub stats: bool,
}

pub fn run(ckpt: &Path, opts: &ChatOptions, device: &Device) -> Result<()> {
    let loaded = checkpoint::load_lm(ckpt, device)?;
    let model = loaded.model.valid();
    let mut chat = ChatSession::new(
        &model,
        &loaded.tok,
        opts.sampling.clone(),
        opts.seed,
        device,
    );
    let stdin = std::io::stdin();
    eprintln!(
        "chat with {} (/reset starts over, /save FILE writes the conversation; \
         empty line or {EOF_KEYS} quits)",
        loaded.dir.display()
    );
    let mut turn = 0;
    loop {
        eprint!("> ");
        std::io::stderr().flush().ok();
        let mut line = String::new();
        // `trim` also drops the `\r` of a Windows console's `\r\n`
        let n = stdin
            .lock()
            .read_line(&mut line)
            .context("reading the terminal")?;
        let line = line.trim();
        if n == 0 || line.is_empty() {
            return Ok(());
        }
        if let Some(cmd) = line.strip_prefix('/') {
            command(cmd, &mut chat, &mut turn)?;
            continue;
        }
        let t0 = Instant::now();
        let reply = chat.say(line)?;
        turn += 1;
        notices(&reply, model.n_ctx());
        println!("{}", reply.text);
        std::io::stdout().flush().ok();
        if opts.stats {
            eprintln!(
                "[turn {turn}: {} tokens run of {} in context, {} sampled, {:.3} s]",
                reply.fed,
                reply.context,
                reply.sampled,
                t0.elapsed().as_secs_f64()
            );
        }
    }
}

fn notices(r: &Reply, n_ctx: usize) {
    if r.dropped > 0 {
        eprintln!(
            "(the conversation outgrew the model's context of {n_ctx} tokens: \
             the oldest {} exchange{} dropped)",
            r.dropped,
            if r.dropped == 1 { " was" } else { "s were" }
        );
    }
    if r.cut {
        eprintln!("(that message is longer than the context allows: only its end was read)");
    }
}

fn command(cmd: &str, chat: &mut ChatSession, turn: &mut usize) -> Result<()> {
    let (name, arg) = cmd.split_once(' ').unwrap_or((cmd, ""));
    match (name, arg.trim()) {
        ("reset", _) => {
            chat.reset();
            *turn = 0;
            eprintln!("(a new conversation)");
        }
        ("save", "") => eprintln!("(/save needs a file name: /save FILE)"),
        ("save", file) => {
            let saved = SftRecord {
                messages: chat.messages(),
            };
            // a failed save is reported and the conversation goes on
            match write_jsonl(Path::new(file), std::slice::from_ref(&saved)) {
                Ok(()) => eprintln!("(saved {} messages to {file})", saved.messages.len()),
                Err(e) => eprintln!("(could not save to {file}: {e:#})"),
            }
        }
        _ => eprintln!(
            "(unknown command /{name}: /reset starts over, /save FILE writes the conversation)"
        ),
    }
    Ok(())
}
