//! The pipeline's stage runner: one line per stage saying what it does and how long it took,
//! and `timings.json`, which `rlhf report` reads back (the same types on both sides).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// Wall time of one stage, as recorded in `timings.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTime {
    pub name: String,
    pub seconds: f64,
    /// True when the stage was already finished and this run skipped it.
    #[serde(default)]
    pub skipped: bool,
    /// The stage's peak host memory (RSS), MiB: its own on Linux, the run's so far elsewhere;
    /// None where unknown (Windows) or skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_mib: Option<f64>,
}

/// Marks the names of the `--ptx-ablation` stages, an optional extra that is not part of the job.
pub const ABLATION_TAG: &str = "(no ptx)";

impl StageTime {
    /// True for a `--ptx-ablation` stage (not counted in the job's wall time).
    pub fn is_ablation(&self) -> bool {
        self.name.ends_with(ABLATION_TAG)
    }
}

/// `timings.json`: the stages of the last run on this directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    #[serde(default)]
    pub stages: Vec<StageTime>,
}

/// Prints the stage lines and records timings.
pub(super) struct Runner {
    out: PathBuf,
    n: usize,
    i: usize,
    timings: Timings,
}

impl Runner {
    /// A runner for `n` stages writing `out/timings.json`.
    pub(super) fn new(out: PathBuf, n: usize) -> Self {
        Self {
            out,
            n,
            i: 0,
            timings: Timings::default(),
        }
    }

    /// Runs stage `name` unless `done`; `what` says what it will do, `f` does it and returns the
    /// closing line.
    pub(super) fn stage(
        &mut self,
        name: &str,
        done: bool,
        what: String,
        f: impl FnOnce() -> Result<String>,
    ) -> Result<()> {
        self.i += 1;
        let (i, n) = (self.i, self.n);
        let t0 = Instant::now();
        crate::util::memory::reset_peak();
        let mut peak = None;
        if done {
            eprintln!("[{i}/{n}] {name}: already done, skipped");
        } else {
            eprintln!("[{i}/{n}] {name}: {what}");
            let line = f().with_context(|| format!("pipeline stage {name}"))?;
            peak = crate::util::memory::peak_rss_mib();
            let shown = peak
                .map(|m| format!(", peak memory {:.2} GB", m / 1024.0))
                .unwrap_or_default();
            eprintln!(
                "[{i}/{n}] {name}: done in {:.1}s{shown}{line}",
                t0.elapsed().as_secs_f64()
            );
        }
        self.timings.stages.push(StageTime {
            name: name.to_string(),
            seconds: t0.elapsed().as_secs_f64(),
            skipped: done,
            peak_rss_mib: peak,
        });
        crate::config::save_json(&self.timings, &self.out.join("timings.json"))
    }
}
