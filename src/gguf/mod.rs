//! GGUF, llama.cpp's model file format: reading (metadata, tensor infos, tensors dequantised to
//! f32), writing (F32, F16, Q8_0 or raw blocks of any type), ggml's block quantisations, and the
//! tokenizer a GGUF file describes. For importing llama.cpp models (SmolLM2, Llama, Qwen2) and
//! exporting ours; the mapping of tensor names to a model lives with the model.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use rlhf::gguf::{GgufFile, GgufTokenizer};
//! let f = GgufFile::open("SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let layers = f.get_u32("llama.block_count")?;
//! let (shape, values) = f.tensor_f32("token_embd.weight")?; // shape [49152, 576]
//! let tok = GgufTokenizer::from_gguf(&f)?;
//! # Ok(()) }
//! ```

pub mod quant;
pub mod read;
pub mod tokenizer;
pub mod value;
pub mod write;

pub use quant::GgmlType;
pub use read::{GgufFile, TensorInfo};
pub use tokenizer::GgufTokenizer;
pub use value::{FromValue, Value, ValueType};
pub use write::GgufWriter;
