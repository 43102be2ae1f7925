//! Small helpers shared by every stage: atomic file writes, a seedable RNG, the panic boundary.

pub mod alloc;
pub mod fs;
pub mod panic;
pub mod rng;
