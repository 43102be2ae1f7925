//! The binary as a user runs it: the pipeline end to end, every path, kills and crashes,
//! the NaN guard, every stage on wgpu against the CPU, bad inputs, doctor and the shaders.
//! One test binary for the area (each links the whole crate): a module per file.

#[path = "../common/mod.rs"]
mod common;
#[path = "../fixtures/mod.rs"]
mod fixtures;

mod bad_inputs;
mod cli;
mod doctor;
mod gpu_stages;
mod llama_stages;
mod lora;
mod nan_guard;
mod paths;
mod recovery;
mod shaders;
