//! Small helpers shared by every layer: error measures that keep NaN (`compare`), atomic file
//! writes, sorted JSON, a seedable RNG, the panic boundary, peak memory, host/device tensor
//! moves and the micro-batch sharding over threads (`shards`).

pub mod alloc;
pub mod compare;
pub mod fs;
pub mod json;
pub mod memory;
pub mod panic;
pub mod rng;
pub mod shards;
pub mod tensors;
