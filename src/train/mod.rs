//! Training plumbing shared by every stage: the one training loop ([`trainer::Trainer`]); what a
//! stage does around it ([`run::StageRun`]: directory, resume-or-fresh, `stage.json`,
//! `summary.json`, launch counts); a model in training and the one way an update is applied
//! ([`trained::Trained`]: clip, learning rate, guard, optimizer step); optimizer and LR schedule,
//! global-norm gradient clipping, the non-finite guard, a batch on the device, metrics CSV and
//! progress bars.

pub mod clip;
pub mod guard;
pub mod metrics;
pub mod nll;
pub mod optim;
pub mod recompute;
pub mod run;
pub mod schedule;
pub mod tensors;
pub mod trained;
pub mod trainer;
