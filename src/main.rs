//! `rlhf`: parse the command line, dispatch, map errors to an exit code (1: an error, 2: bad
//! usage (clap), 3: a panic, e.g. of the compute backend, turned into a message with a hint).

fn main() {
    rlhf::util::alloc::tune_for_tensors();
    rlhf::util::panic::install();
    rlhf::util::fs::fail_writes_past_the_size_limit();
    let cli = rlhf::cli::parse();
    if let Err(e) = rlhf::commands::dispatch(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
