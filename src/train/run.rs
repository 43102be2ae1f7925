//! What every training stage does around its loop, in one order: count from the start (fused
//! kernel launches, wall time), make the run directory, find where to start (fresh, or the
//! checkpoint `--resume` continues from, once the stage's checks passed), save the settings as
//! `stage.json` only then (a refused resume writes nothing), and at the end write `summary.json`.

use super::trainer::Start;
use crate::checkpoint;
use crate::kernels::Launches;
use anyhow::Result;
use burn::optim::ModuleOptimizer;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One invocation of a training stage writing into `out`.
pub struct StageRun {
    out: PathBuf,
    launches: Launches,
    t0: Instant,
}

/// Where a stage starts: its model and optimizer (fresh, or as the checkpoint left them), the
/// loop's state, and what else the stage read (`X`: fresh, or from the checkpoint).
pub struct Begun<M, X> {
    pub model: M,
    pub optim: ModuleOptimizer,
    pub start: Start,
    pub extra: X,
}

impl StageRun {
    /// Starts counting the run's launches and time. Call before the stage reads its data, so the
    /// counts cover everything the stage does.
    pub fn begin(out: &Path) -> Self {
        Self {
            out: out.to_path_buf(),
            launches: Launches::now(),
            t0: Instant::now(),
        }
    }

    /// Makes the stage directory (and its parents), naming it when that fails.
    pub fn create_dir(&self) -> Result<()> {
        crate::util::fs::create_out_dir(&self.out)
    }

    /// The model, optimizer and loop state to start from. Without `--resume`, or with no
    /// checkpoint in the directory, `fresh` gives the model and the loop starts at step 0 with its
    /// data RNG seeded by `seed`. Otherwise `load` reads the checkpoint's model (and whatever else
    /// the stage keeps there) and checks it fits this run, and the optimizer and loop state are
    /// read back from the checkpoint, so the run continues bit for bit.
    pub fn start<M: burn::module::Module, X>(
        &self,
        (resume, seed): (bool, u64),
        optim: ModuleOptimizer,
        fresh: impl FnOnce() -> Result<(M, X)>,
        load: impl FnOnce(&Path) -> Result<(M, X)>,
    ) -> Result<Begun<M, X>> {
        let Some(dir) = resume_dir(&self.out, resume) else {
            let (model, extra) = fresh()?;
            let start = Start::fresh(seed);
            return Ok(Begun {
                model,
                optim,
                start,
                extra,
            });
        };
        let (model, extra) = load(&dir)?;
        let (model, optim, state) = checkpoint::load_resume(&dir, model, optim)?;
        let start = Start {
            state,
            resumed: Some(dir),
        };
        Ok(Begun {
            model,
            optim,
            start,
            extra,
        })
    }

    /// Saves the stage's settings as `stage.json`: after the resume checks, so that a refused
    /// resume leaves the directory as it was.
    pub fn save_settings<C: Serialize>(&self, cfg: &C) -> Result<()> {
        crate::config::save_json(cfg, &self.out.join("stage.json"))
    }

    /// The fused kernels launched since [`StageRun::begin`].
    pub fn launches(&self) -> Launches {
        Launches::since(self.launches)
    }

    /// Seconds since [`StageRun::begin`].
    pub fn seconds(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Writes the stage's `summary.json`.
    pub fn finish<S: Serialize>(&self, summary: &S) -> Result<()> {
        let mut v = serde_json::to_value(summary)?;
        if let (Some(obj), Some(peak)) = (v.as_object_mut(), crate::util::memory::peak_rss_mib()) {
            // host memory: the stage's own peak on Linux (reset when it began), the process's
            // elsewhere
            obj.insert("peak_rss_mib".into(), serde_json::json!(peak));
        }
        crate::config::save_json(&v, &self.out.join("summary.json"))
    }
}

/// The checkpoint `--resume` continues from: the one in `out`, when asked for and present.
fn resume_dir(out: &Path, resume: bool) -> Option<PathBuf> {
    if resume {
        checkpoint::resolve(out).ok()
    } else {
        None
    }
}
