//! Command-line interface (clap derive): one struct per subcommand, every flag documented.

use crate::config::TrainConfig;
use crate::config::{Arch, ModelOverrides};
use crate::device::DeviceChoice;
use crate::model::generate::SampleConfig;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;

mod bench;
mod defaults;
mod dpo;
mod eval_report;
mod export;
mod lora;
mod pipeline;
mod ppo;
pub mod ranges;
mod reward;
pub use crate::labeler::LabelerKind;
pub use bench::BenchCmd;
pub use dpo::DpoArgs;
pub use eval_report::{BonArgs, EvalArgs, EvalLabeler, HeldOutArgs, ReportArgs};
pub use export::{
    ExportArgs, ExportFormat, ExportHfArgs, ExportPeftArgs, GgufType, ImportArgs, ImportHfArgs,
    ImportPeftArgs, MergeArgs,
};
pub use lora::{LoraArgs, RecomputeArg};
pub use pipeline::PipelineArgs;
pub use ppo::PpoArgs;
pub use reward::{LabelArgs, RmArgs, ScoreArgs};

#[derive(Parser, Debug)]
#[command(
    name = "rlhf",
    version,
    about = "InstructGPT end to end — pretrain, SFT, reward model, PPO — on any GPU through wgpu, \
             or on the CPU",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The command line: the derived flags, with the default of each stage setting (read from the
/// stage's config) in their help.
pub fn command() -> clap::Command {
    defaults::with_stage_defaults(Cli::command())
}

/// Parses the process's arguments against [`command`], as `Cli::parse` would: on bad usage it
/// prints the error and exits with code 2; `--help` and `--version` print and exit with 0.
pub fn parse() -> Cli {
    let mut cmd = command();
    let matches = cmd.get_matches_mut();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut cmd).exit())
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the main job on the bundled assets: tokenizer → pretrain → SFT → sample → label →
    /// RM → PPO.
    Pipeline(PipelineArgs),
    /// List the GPU adapters wgpu sees and which one `--device auto` picks.
    Devices,
    /// Tokenizer commands.
    #[command(subcommand)]
    Tokenizer(TokenizerCmd),
    /// Pretrain a GPT-2 model from scratch on raw text.
    Pretrain(PretrainArgs),
    /// Supervised fine-tuning on demonstrations or conversations (loss on assistant tokens only).
    Sft(SftArgs),
    /// Rank sampled responses with a labeler and write rankings for `rlhf rm`.
    Label(LabelArgs),
    /// Train a reward model on K-wise rankings (InstructGPT eq. 1).
    Rm(RmArgs),
    /// PPO-ptx: optimise a policy against a reward model with a KL penalty (InstructGPT eq. 2).
    Ppo(Box<PpoArgs>),
    /// Direct Preference Optimization: train the policy on the rankings themselves, no reward
    /// model, no sampling (Rafailov et al. 2023).
    Dpo(DpoArgs),
    /// Print a reward for every response of a samples file (JSONL).
    Score(ScoreArgs),
    /// Sample K responses per prompt from a checkpoint.
    Sample(SampleArgs),
    /// Talk to a checkpoint: a conversation it remembers (`/reset`, `/save FILE`).
    Chat(ChatArgs),
    /// Print throughput figures.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Write the final WGSL text of every kernel variant this program can launch, one file each.
    Kernels(KernelsArgs),
    /// Check the device: the fused kernels against their reference twins, a training step
    /// against the CPU backend, a throughput probe; prints the adapter, driver and limits.
    Doctor(DeviceArg),
    /// Compare a policy with a baseline on held-out prompts: win rate, scores, KL, perplexity,
    /// fluency and reward-hacking guards.
    Eval(EvalArgs),
    /// Best-of-n from the SFT model, the reward model picking: win rate over a plain sample and
    /// the exact KL, for n = 1, 2, 4, … (the frontier PPO is measured against).
    Bon(BonArgs),
    /// (Re)write report.md and its plots for a run directory.
    Report(ReportArgs),
    /// Convert a model into a checkpoint that `--init` accepts: a Hugging Face directory (GPT-2,
    /// Llama, Qwen2) or a llama.cpp GGUF file (Llama, Qwen2; quantised tensors dequantised).
    Import(ImportArgs),
    /// Fold a LoRA checkpoint's adapters into its base's weights: a full checkpoint (a language
    /// or reward model) that no longer needs the base, for `export`, `export-hf` and any stage.
    Merge(MergeArgs),
    /// Convert a Hugging Face directory (config.json, model.safetensors, tokenizer) into a
    /// checkpoint that `--init` accepts (as `import --from DIR`).
    ImportHf(ImportHfArgs),
    /// Write a checkpoint as a Hugging Face directory of its family with its tokenizer: GPT-2
    /// (`GPT2LMHeadModel`, `GPT2ForSequenceClassification` for a reward model) or Llama
    /// (`LlamaForCausalLM`, `LlamaForSequenceClassification`).
    ExportHf(ExportHfArgs),
    /// Write a LoRA checkpoint's adapters (a language model's) as a Hugging Face PEFT adapter
    /// directory (adapter_config.json, adapter_model.safetensors) that
    /// `PeftModel.from_pretrained` loads onto the base model (as `export-hf` writes it).
    ExportPeft(ExportPeftArgs),
    /// Read a Hugging Face PEFT LoRA adapter directory onto a base checkpoint: a LoRA
    /// checkpoint that every stage, `sample`, `merge` and `export-peft` take.
    ImportPeft(ImportPeftArgs),
    /// Write a checkpoint for other tools: a Hugging Face directory (as `export-hf`), a
    /// llama.cpp GGUF file (Llama-family language models; llama.cpp and Ollama load it) or a
    /// LoRA checkpoint's adapters as PEFT saves them (as `export-peft`).
    Export(ExportArgs),
}

#[derive(Args, Debug)]
pub struct KernelsArgs {
    /// Directory to write into (created if missing): one `.wgsl` file per variant, named by
    /// kernel, head size and work-size plan, as the shader compiler receives it (loops
    /// unrolled, placeholders filled), for checking with other tools (naga, tint, dxc).
    #[arg(long, required_unless_present = "compile_times")]
    pub dump: Option<PathBuf>,
    /// Compile every variant on the wgpu adapter `--device` picks and print how long the driver
    /// took for each (shader module, pipeline and a first one-workgroup run, since some drivers
    /// compile at first use), then the total and the slowest.
    #[arg(long)]
    pub compile_times: bool,
    /// The adapter for `--compile-times` (auto: a hardware GPU; wgpu: any adapter, software ones
    /// such as lavapipe included).
    #[arg(long, value_enum, default_value_t = DeviceChoice::Wgpu)]
    pub device: DeviceChoice,
    /// Only the variants whose file name contains one of these texts (e.g. `hs64`, `bwd_dq`,
    /// `wg8_`).
    #[arg(long, num_args = 1..)]
    pub only: Vec<String>,
    /// Attention head sizes (n_embd / n_head) to write; default: those of the bundled presets.
    #[arg(long = "head-size", num_args = 1..)]
    pub head_sizes: Vec<usize>,
}

#[derive(Args, Debug, Clone)]
pub struct DeviceArg {
    /// Where to compute: a hardware GPU when there is one (auto), any wgpu adapter, one graphics
    /// API, or the CPU.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model preset: tiny (2×64, ctx 64), small (4×128, ctx 128), base (6×384, ctx 256), gpt2
    /// (12×768, ctx 1024, GPT-2 small), or a path to a preset .toml.
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// Override the preset's number of layers.
    #[arg(long)]
    pub n_layer: Option<usize>,
    /// Override the preset's width.
    #[arg(long)]
    pub n_embd: Option<usize>,
    /// Override the preset's number of heads.
    #[arg(long)]
    pub n_head: Option<usize>,
    /// Override the preset's context length.
    #[arg(long)]
    pub n_ctx: Option<usize>,
    /// Override the preset's dropout.
    #[arg(long, value_parser = ranges::dropout)]
    pub dropout: Option<f64>,
    /// The decoder family of a model trained from scratch: gpt2 (the presets'), or llama (the
    /// preset's layers, width, heads and context as a Llama: RMSNorm, rotary positions,
    /// SwiGLU, half as many key/value heads as heads when the count is even).
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
}

impl ModelArgs {
    pub fn overrides(&self) -> ModelOverrides {
        ModelOverrides {
            arch: self.arch,
            n_layer: self.n_layer,
            n_embd: self.n_embd,
            n_head: self.n_head,
            n_ctx: self.n_ctx,
            dropout: self.dropout,
        }
    }
}

/// Optimisation flags; unset ones keep the stage's default (its `TrainConfig`), which `--help`
/// shows (`cli/defaults.rs`).
#[derive(Args, Debug, Clone, Default)]
pub struct OptimArgs {
    /// Optimizer steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Sequences per batch; for the RM and DPO, prompts per batch (each with all its responses).
    #[arg(long, value_parser = ranges::batch_size)]
    pub batch_size: Option<usize>,
    /// Peak learning rate, warmup then cosine decay to 10%.
    #[arg(long, value_parser = ranges::learning_rate)]
    pub lr: Option<f64>,
    /// Warmup steps.
    #[arg(long)]
    pub warmup: Option<usize>,
    /// AdamW weight decay.
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Clip gradients to this global norm; 0 disables.
    #[arg(long)]
    pub grad_clip: Option<f64>,
    /// Held-out evaluation every N steps.
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Resumable checkpoint every N steps.
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Random seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Micro-batches per batch: on the CPU backend each runs on its own thread, on a
    /// GPU in turn. The gradient is the whole batch's either way; dropout masks are drawn per
    /// micro-batch, so keep it fixed to reproduce a run.
    #[arg(long)]
    pub micro_batches: Option<usize>,
    /// Stop after this many consecutive non-finite losses or gradients (each is skipped).
    #[arg(long)]
    pub max_bad_steps: Option<usize>,
}

impl OptimArgs {
    pub fn apply(&self, mut c: TrainConfig) -> TrainConfig {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { c.$f = v; } )* };
        }
        set!(
            steps,
            batch_size,
            lr,
            warmup,
            weight_decay,
            grad_clip,
            eval_every,
            checkpoint_every,
            seed,
            micro_batches,
            max_bad_steps
        );
        c
    }
}

#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Softmax temperature; 0 is greedy.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Keep only the k most likely tokens (0: off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling threshold (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Maximum tokens per response.
    #[arg(long, default_value_t = 48)]
    pub max_new_tokens: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SamplingArgs {
    pub fn config(&self) -> SampleConfig {
        SampleConfig {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            max_new_tokens: self.max_new_tokens,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum TokenizerCmd {
    /// Train a byte-level BPE tokenizer with an <|endoftext|> special token.
    Train {
        /// Text files to learn merges from.
        #[arg(long, num_args = 1.., required = true)]
        corpus: Vec<PathBuf>,
        /// Vocabulary size including the 256 byte tokens and <|endoftext|>.
        #[arg(long, default_value_t = 2048)]
        vocab_size: usize,
        /// Where to write tokenizer.json.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct PretrainArgs {
    /// Text files to train on.
    #[arg(long, num_args = 1.., required = true)]
    pub corpus: Vec<PathBuf>,
    /// tokenizer.json to use (see `rlhf tokenizer train`), or `gpt2` for OpenAI's GPT-2 BPE
    /// (bundled in assets/gpt2/).
    #[arg(long)]
    pub tokenizer: PathBuf,
    /// Output directory: metrics.csv, stage.json and the checkpoint in ckpt/.
    #[arg(long)]
    pub out: PathBuf,
    /// Fraction of each file (its end) held out for evaluation.
    #[arg(long, default_value_t = 0.05, value_parser = ranges::fraction)]
    pub val_fraction: f64,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub recompute: RecomputeArg,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub optim: OptimArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Args, Debug)]
pub struct SftArgs {
    /// Checkpoint to start from (a stage directory or its ckpt/).
    #[arg(long)]
    pub init: PathBuf,
    /// Demonstrations: JSONL of {"prompt","response"}, Alpaca {"instruction","input","output"},
    /// conversations {"messages":[{"role","content"},...]} ending with the assistant's turn
    /// (every assistant turn is learned), {"prompt","completion"} or Anthropic HH {"chosen"}.
    #[arg(long)]
    pub data: PathBuf,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Fraction of demonstrations held out for evaluation.
    #[arg(long, default_value_t = 0.05, value_parser = ranges::fraction)]
    pub val_fraction: f64,
    /// Override the checkpoint's dropout.
    #[arg(long, value_parser = ranges::dropout)]
    pub dropout: Option<f64>,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub recompute: RecomputeArg,
    #[command(flatten)]
    pub optim: OptimArgs,
    #[command(flatten)]
    pub lora: LoraArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Checkpoint to sample from.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// Prompts: JSONL of {"prompt"} or conversations {"messages":[...]} ending with the user's
    /// turn.
    #[arg(long)]
    pub prompts: PathBuf,
    /// Responses per prompt.
    #[arg(short = 'k', long, default_value_t = 4)]
    pub k: usize,
    /// Output JSONL of {"prompt","responses":[...]}.
    #[arg(long)]
    pub out: PathBuf,
    /// Sequences decoded together.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Use only the first N prompts (0: all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Args, Debug)]
pub struct ChatArgs {
    /// Checkpoint to talk to.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// After each reply, print to stderr the tokens the turn ran through the model (only the new
    /// ones while the history is cached), the tokens in context, the tokens sampled and the time.
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}
