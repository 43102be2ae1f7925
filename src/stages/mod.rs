//! The commands' stages, thin over the library: each reads its inputs, runs, and writes its
//! outputs into its own directory.

pub mod assets;
pub mod bench;
pub mod bench_attention;
pub mod bench_counters;
pub mod bon;
pub mod chat;
pub mod doctor;
pub mod dpo;
pub mod eval;
pub mod label;
pub mod lm_train;
pub mod lora;
pub mod merge;
pub mod ppo;
pub mod pretrain;
pub mod rm;
pub mod sample;
pub mod score;
pub mod sft;
pub mod tokenizer;
