//! Reading what users give: property tests of the readers, conversations and chat templates,
//! the sentiment labeler, the human labeler, the bundled assets and files from other systems.
//! One test binary for the area (each links the whole crate): a module per file.

#[path = "../common/mod.rs"]
mod common;
#[path = "../fixtures/mod.rs"]
mod fixtures;

mod assets;
mod conversations;
mod fuzz;
mod label_human;
mod portability;
mod sentiment;
