//! The decoders — GPT-2 and the Llama family, each with Hugging Face's parameter names so
//! checkpoints map by name — behind one [`Lm`] every stage uses; their attention, KV-cached
//! generation, the reward/value head, and sequence log-probabilities (DPO).

pub mod attention;
pub mod dense;
pub mod dropout;
pub mod generate;
pub mod gpt;
pub mod heads;
pub mod init;
pub mod layer_norm;
pub mod llama;
pub mod lm;
pub mod logprob;
pub mod lora;
pub mod loss;
pub mod rms_norm;
pub mod rope;
pub mod score;
pub mod steps;

pub use gpt::{Gpt, KvCache};
pub use heads::RewardModel;
pub use init::InitRng;
pub use llama::Llama;
pub use lm::Lm;
