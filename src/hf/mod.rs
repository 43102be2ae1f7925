//! Hugging Face interop: GPT-2 and Llama-family (`llama`, `qwen2`) directories (`config.json`,
//! `model.safetensors`, a tokenizer) in,
//! checkpoints out as `transformers` loads them (`GPT2LMHeadModel`,
//! `GPT2ForSequenceClassification`, `AutoTokenizer`); LoRA adapters in and out as PEFT saves
//! and loads them ([`peft`]).
//!
//! Names and layouts are mapped explicitly (see [`layout`]): GPT-2's `Conv1D` stores its weight
//! `[in, out]`, which is also burn's `Linear` layout, so trunk weights are copied as they are;
//! only the reward head (a torch `nn.Linear`, `[out, in]`) is transposed. burn's PyTorch adapter
//! is not used: it transposes every linear weight, which is wrong for `Conv1D`.

pub mod export;
pub mod gguf_export;
pub mod gguf_import;
mod gguf_names;
mod gguf_vocab;
pub mod hf_config;
pub mod import;
pub mod layout;
pub mod llama_config;
pub mod llama_weights;
pub mod peft;
pub mod peft_export;
pub mod peft_import;
pub mod weights;

pub use export::export_hf;
pub use gguf_export::{export_gguf, GgufExportSummary};
pub use gguf_import::import_gguf;
pub use import::import_hf;
pub use peft_export::export_peft;
pub use peft_import::import_peft;
