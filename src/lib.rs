//! rlhf: the InstructGPT recipe (pretraining, SFT, a reward model on K-wise rankings, PPO-ptx)
//! as one Rust library and binary, on any GPU through wgpu or on the CPU.

pub mod chat_template;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod device;
pub mod eval;
pub mod gguf;
pub mod hf;
pub mod kernels;
pub mod labeler;
pub mod model;
pub mod pipeline;
pub mod rl;
pub mod stages;
pub mod train;
pub mod util;
