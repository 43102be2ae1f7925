//! The run report (`report.md` + PNG plots): reading a run directory (`inputs`), checking the
//! targets of the default job (`targets`), drawing plots (`plots`) and writing the text
//! (`markdown`). `crate::stages::report::write_report` puts them together.

pub mod inputs;
pub mod markdown;
pub mod plots;
pub mod targets;
