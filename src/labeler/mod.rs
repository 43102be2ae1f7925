//! Simulated labelers: score texts (VADER sentiment) and turn scores into
//! (optionally noisy) rankings, standing in for human preference labels.

pub mod bradley_terry;
pub mod sentiment;
