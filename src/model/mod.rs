//! The GPT-2 model (names follow Hugging Face's GPT-2 so checkpoints map by name), its
//! attention, KV-cached generation, and sequence log-probabilities (DPO).

pub mod attention;
pub mod dropout;
pub mod generate;
pub mod gpt;
pub mod heads;
pub mod init;
pub mod layer_norm;
pub mod logprob;
pub mod loss;
pub mod score;

pub use gpt::{Gpt, KvCache};
pub use heads::RewardModel;
pub use init::InitRng;
