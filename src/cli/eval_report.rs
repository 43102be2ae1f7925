//! Flags of `rlhf eval` and `rlhf report` (kept beside `cli.rs` to keep each file short).

use super::{DeviceArg, SamplingArgs};
use clap::Args;
use std::path::PathBuf;

/// The held-out prompts and the labeler's lexicon, for `eval` and `bon`.
#[derive(Args, Debug)]
pub struct HeldOutArgs {
    /// Held-out prompts, {"prompt"} or {"messages": [...]} per line (default: the bundled
    /// assets/eval_prompts.jsonl).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// VADER lexicon of the sentiment labeler (default: the bundled
    /// assets/vader/vader_lexicon.txt).
    #[arg(long)]
    pub lexicon: Option<PathBuf>,
}

#[derive(Args, Debug)]
#[command(
    mut_arg("temperature", |a| a.default_value("0.7").help(
        "Softmax temperature of the compared responses (the KL estimate always samples at 1)"
    )),
    mut_arg("seed", |a| a
        .default_value("1234")
        .help("Sampling seed, the same for both models"))
)]
pub struct EvalArgs {
    /// The model under test (e.g. the PPO policy): a checkpoint or stage directory.
    #[arg(long)]
    pub policy: PathBuf,
    /// The model it is compared with (e.g. the SFT model).
    #[arg(long)]
    pub baseline: PathBuf,
    #[command(flatten)]
    pub held_out: HeldOutArgs,
    /// Who judges the responses (only the simulated sentiment labeler can judge unattended).
    #[arg(long, value_enum, default_value_t = EvalLabeler::Sentiment)]
    pub labeler: EvalLabeler,
    /// Reward model: also report the mean RM score of each model and the RM's win rate.
    #[arg(long)]
    pub rm: Option<PathBuf>,
    /// Pretrained model: report fluency, the perplexity of each model's samples under it.
    #[arg(long)]
    pub pretrained: Option<PathBuf>,
    /// Text never trained on, for held-out perplexity (default: assets/austen/persuasion.txt).
    #[arg(long)]
    pub heldout_text: Option<PathBuf>,
    /// Windows of the held-out text measured (each one context length of tokens, spread evenly).
    #[arg(long, default_value_t = 32)]
    pub ppl_windows: usize,
    /// Output directory: samples_policy.jsonl, samples_baseline.jsonl, eval.json.
    #[arg(long, default_value = "eval")]
    pub out: PathBuf,
    /// Use only the first N prompts (0: all).
    #[arg(long, default_value_t = 0)]
    pub n: usize,
    /// Responses each model samples per prompt: the win rate and KL average over all of them,
    /// and their 95% intervals resample prompts, so more samples narrow the intervals.
    #[arg(long, default_value_t = 4, value_parser = super::ranges::samples_per_prompt)]
    pub samples_per_prompt: usize,
    /// How the compared responses are sampled, and the seed (the same for both models).
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// Labelers that can judge an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalLabeler {
    /// VADER sentiment (compound score), higher is better.
    Sentiment,
}

#[derive(Args, Debug)]
pub struct BonArgs {
    /// The policy sampled: the SFT model (a checkpoint or stage directory).
    #[arg(long)]
    pub policy: PathBuf,
    /// The reward model that picks the best of n.
    #[arg(long)]
    pub rm: PathBuf,
    #[command(flatten)]
    pub held_out: HeldOutArgs,
    /// Largest n: candidates sampled per prompt (besides the baseline sample); n = 1, 2, 4, …
    /// up to it are measured.
    #[arg(long, default_value_t = 64)]
    pub n_max: usize,
    /// Output directory: bon.json, candidates.jsonl.
    #[arg(long, default_value = "bon")]
    pub out: PathBuf,
    /// Use only the first N prompts (0: all).
    #[arg(long, default_value_t = 0)]
    pub n: usize,
    /// Softmax temperature (1: the policy itself, for which the KL formula holds).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Maximum tokens per response.
    #[arg(long, default_value_t = 48)]
    pub max_new_tokens: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 1234)]
    pub seed: u64,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Run directory (what `rlhf pipeline --out` wrote); report.md and plots/ are written there.
    #[arg(long)]
    pub run: PathBuf,
}
