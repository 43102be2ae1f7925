//! Data: tokenizer, JSON Lines formats with line-numbered errors, the prompt template, batching.

pub mod batching;
pub mod formats;
pub mod rankings;
pub mod template;
pub mod tokenizer;
