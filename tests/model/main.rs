//! The model and its forms: the GPT and reward model against references, micro-batch
//! shards, and Hugging Face import and export.
//! One test binary for the area (each links the whole crate): a module per file.

#[path = "../common/mod.rs"]
mod common;
#[path = "../fixtures/mod.rs"]
mod fixtures;

mod hf;
mod lora;
mod model;
mod recompute;
mod shards;
