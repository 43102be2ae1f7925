//! Training plumbing shared by every stage: optimizer and LR schedule, global-norm gradient
//! clipping, the non-finite guard, host/device tensor helpers, metrics CSV and progress bars.

pub mod clip;
pub mod guard;
pub mod metrics;
pub mod schedule;
pub mod shards;
pub mod tensors;
