//! Small helpers shared by every stage: atomic file writes, a seedable RNG, timing.

pub mod fs;
pub mod rng;
