//! Data: tokenizer, JSON Lines formats with line-numbered errors, the prompt template, corpora as
//! token streams, prompt + response sequences (the one prompt-fitting rule), batching.

pub mod batching;
pub mod chat_format;
pub mod conversation;
pub mod corpus;
pub mod formats;
pub mod pairs;
pub mod rankings;
pub mod template;
pub mod tokenizer;
