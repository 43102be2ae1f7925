//! `rlhf`: parse the command line, dispatch, map errors to an exit code.

use clap::Parser;

fn main() {
    let cli = rlhf::cli::Cli::parse();
    if let Err(e) = rlhf::commands::dispatch(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
