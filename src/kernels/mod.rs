//! Hand-written WGSL kernels, each with a reference twin in plain burn ops (DESIGN.md § Style 3).

pub mod attention;
mod attention_launch;
