//! Flags of the model conversions: `rlhf import` (a GGUF file or a Hugging Face directory into a
//! checkpoint), `import-hf`, `rlhf export` (a checkpoint for other tools, as a Hugging Face
//! directory, a llama.cpp GGUF file or PEFT adapters), `export-hf`, `export-peft` and
//! `import-peft`.

use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Checkpoint to export (a stage directory or its ckpt/).
    #[arg(long)]
    pub ckpt: PathBuf,
    /// Where to write: a directory (hf) or a file (gguf).
    #[arg(long)]
    pub out: PathBuf,
    /// hf: a directory transformers loads (as `export-hf`; language or reward model). gguf: one
    /// file llama.cpp and Ollama load (Llama-family language models). peft: a LoRA language
    /// model's adapters as a PEFT adapter directory (as `export-peft`). Default: gguf when --out
    /// ends in .gguf, else hf.
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// GGUF only: the type of the weight matrices (norms stay f32). Default f16, as llama.cpp's
    /// converter writes; q8_0 is about half its size.
    #[arg(long, value_enum)]
    pub gguf_type: Option<GgufType>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Hf,
    Gguf,
    Peft,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgufType {
    F32,
    F16,
    #[value(name = "q8_0")]
    Q8_0,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A Hugging Face model directory (config.json with model_type gpt2, llama or qwen2;
    /// model.safetensors or its shards; tokenizer.json) or a GGUF file (general.architecture
    /// llama or qwen2; F32, F16, BF16, Q4_0 to Q8_0 and Q2_K to Q6_K tensors).
    #[arg(long)]
    pub from: PathBuf,
    /// Checkpoint directory to create (must not exist or be empty).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct ImportHfArgs {
    /// Hugging Face model directory: config.json (model_type gpt2, llama or qwen2),
    /// model.safetensors, and
    /// tokenizer.json or vocab.json + merges.txt. Pickle files (pytorch_model.bin) are not read.
    #[arg(long)]
    pub dir: PathBuf,
    /// Checkpoint directory to create (must not exist or be empty).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct ExportHfArgs {
    /// Checkpoint to export (a stage directory or its ckpt/; language or reward model).
    #[arg(long)]
    pub ckpt: PathBuf,
    /// Directory to write (created if needed).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct ExportPeftArgs {
    /// A LoRA checkpoint of a language model (or a stage directory holding one in ckpt/); its
    /// base must be where it was when the adapters were trained. Reward and value models are
    /// refused: `merge` then `export-hf` writes them whole.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// Directory to write adapter_config.json and adapter_model.safetensors into (created if
    /// needed). Its base_model_name_or_path is the base checkpoint's directory: give PEFT that
    /// base as `export-hf` writes it.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct ImportPeftArgs {
    /// A PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors) of a
    /// causal language model: one rank and alpha, no bias or DoRA, the same layers adapted in
    /// every block.
    #[arg(long)]
    pub adapter: PathBuf,
    /// The full language-model checkpoint the adapter was trained on (e.g. `import` of the
    /// Hugging Face model named in its base_model_name_or_path).
    #[arg(long)]
    pub base: PathBuf,
    /// LoRA checkpoint directory to create (must not exist or be empty).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// A LoRA checkpoint (or a stage directory holding one in ckpt/); its base must be where it
    /// was when the adapters were trained.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// Checkpoint directory to create (must not exist or be empty).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub device: super::DeviceArg,
}
