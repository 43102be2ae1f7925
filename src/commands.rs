//! From parsed command-line arguments to the stages: `dispatch` hands each subcommand to one
//! small function in `commands/` that builds the stage's job from the flags, runs it and prints
//! its one-line summary. The flags themselves live in `cli` (the user surface); the work in
//! `stages`.

use crate::cli::{Cli, Command};
use crate::device::{self, DeviceChoice};
use anyhow::Result;

mod dpo;
mod eval;
mod lm;
mod pipeline;
mod ppo;
mod reward;
mod tools;

pub use pipeline::default_run_dir;

/// Selects the compute device and says which one on standard error.
fn open(choice: DeviceChoice) -> Result<device::Selected> {
    let s = device::select(choice)?;
    eprintln!("device: {}", s.description);
    Ok(s)
}

/// Runs one parsed command line.
pub fn dispatch(cli: Cli) -> Result<()> {
    crate::util::panic::inject();
    match cli.command {
        Command::Devices => tools::devices(),
        Command::Tokenizer(t) => tools::tokenizer(t),
        Command::Pretrain(a) => lm::pretrain(a),
        Command::Sft(a) => lm::sft(a),
        Command::Label(a) => reward::label(a),
        Command::Rm(a) => reward::rm(a),
        Command::Ppo(a) => ppo::ppo(*a),
        Command::Dpo(a) => dpo::dpo(a),
        Command::Score(a) => reward::score(a),
        Command::Sample(a) => lm::sample(a),
        Command::Chat(a) => lm::chat(a),
        Command::Pipeline(a) => pipeline::pipeline(a),
        Command::Eval(a) => eval::eval(a),
        Command::Bon(a) => eval::bon(a),
        Command::Report(a) => tools::report(a),
        Command::Import(a) => tools::import(a),
        Command::Merge(a) => tools::merge(a),
        Command::ImportHf(a) => tools::import_hf(a),
        Command::ExportHf(a) => tools::export_hf(a),
        Command::ExportPeft(a) => tools::export_peft(a),
        Command::ImportPeft(a) => tools::import_peft(a),
        Command::Export(a) => tools::export(a),
        Command::Bench(b) => tools::bench(b),
        Command::Kernels(a) => tools::kernels(a),
        Command::Doctor(a) => crate::stages::doctor::run(&device::select(a.device)?),
    }
}
