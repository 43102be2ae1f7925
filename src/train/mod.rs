//! Training plumbing shared by every stage: the one training loop ([`trainer::Trainer`]),
//! optimizer and LR schedule, global-norm gradient clipping, the non-finite guard, a batch on
//! the device, metrics CSV and progress bars.

pub mod clip;
pub mod guard;
pub mod metrics;
pub mod optim;
pub mod schedule;
pub mod tensors;
pub mod trainer;
