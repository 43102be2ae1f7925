//! `rlhf export`: a checkpoint for other tools, as a Hugging Face directory or a llama.cpp GGUF
//! file.

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
    /// file llama.cpp and Ollama load (Llama-family language models). Default: gguf when --out
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
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgufType {
    F32,
    F16,
    #[value(name = "q8_0")]
    Q8_0,
}
