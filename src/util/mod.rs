//! Small helpers shared by every stage: atomic file writes, sorted JSON, a seedable RNG, the
//! panic boundary.

pub mod alloc;
pub mod fs;
pub mod json;
pub mod panic;
pub mod rng;
