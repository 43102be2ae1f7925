//! Training plumbing shared by every stage: the one training loop ([`trainer::Trainer`]),
//! optimizer and LR schedule, global-norm gradient clipping, the non-finite guard, micro-batch
//! sharding, host/device tensor helpers, metrics CSV and progress bars.

pub mod clip;
pub mod guard;
pub mod metrics;
pub mod optim;
pub mod schedule;
pub mod shards;
pub mod tensors;
pub mod trainer;
