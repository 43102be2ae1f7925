//! What `report.md` is made from, read from a run directory into the types the stages wrote it
//! from (`PipelineConfig`, `Timings`, `EvalReport`). Every input is optional: a missing file
//! leaves its part of the report out; a file that exists but cannot be read is an error naming
//! it (a report silently missing a part would mislead).

use super::super::{PipelineConfig, StageTime, Timings};
use crate::data::formats::read_samples;
use crate::eval::EvalReport;
use anyhow::{Context, Result};
use std::path::Path;

/// A `metrics.csv`: its header and rows (empty cells are NaN).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub header: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

impl Metrics {
    /// (step, value) of every row where `column` has a finite value.
    pub fn series(&self, column: &str) -> Vec<(f64, f64)> {
        let Some(c) = self.header.iter().position(|h| h == column) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .filter_map(|r| match (r.first(), r.get(c)) {
                (Some(&s), Some(&v)) if v.is_finite() && s.is_finite() => Some((s, v)),
                _ => None,
            })
            .collect()
    }

    /// The last finite value of `column`.
    pub fn last(&self, column: &str) -> Option<f64> {
        self.series(column).last().map(|&(_, v)| v)
    }
}

/// One held-out prompt with the baseline's (SFT) and the policy's (PPO) response.
#[derive(Debug, Clone, PartialEq)]
pub struct SidePair {
    pub prompt: String,
    pub baseline: String,
    pub policy: String,
}

/// `pipeline.json`: the settings, and the file as the report shows it.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub cfg: PipelineConfig,
    /// The file's JSON pretty-printed with its keys sorted.
    pub pretty: String,
}

/// Everything found in a run directory.
#[derive(Debug, Clone, Default)]
pub struct RunInputs {
    /// `pipeline.json`.
    pub config: Option<ConfigFile>,
    /// `timings.json` stages.
    pub timings: Vec<StageTime>,
    pub pretrain: Option<Metrics>,
    pub sft: Option<Metrics>,
    pub rm: Option<Metrics>,
    /// `rm/summary.json` (the held-out accuracy's interval).
    pub rm_summary: Option<crate::stages::rm::RmSummary>,
    pub ppo: Option<Metrics>,
    /// `eval/eval.json` (the run with ptx, policy = PPO, baseline = SFT).
    pub eval: Option<EvalReport>,
    /// `eval_noptx/eval.json` (a run without ptx), for the alignment tax comparison.
    pub eval_noptx: Option<EvalReport>,
    /// `frontier/frontier.json` (`--compare`).
    pub frontier: Option<crate::pipeline::frontier::Frontier>,
    /// Side-by-side samples from `eval/samples_{baseline,policy}.jsonl`, in file order.
    pub samples: Vec<SidePair>,
}

/// `path` read as a `T`, or None when there is no such file.
fn json<T: for<'de> serde::Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    if !path.is_file() {
        return Ok(None);
    }
    crate::config::load_json(path).map(Some)
}

fn config_file(path: &Path) -> Result<Option<ConfigFile>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let parsing = || format!("parsing {}", path.display());
    let cfg = serde_json::from_str(&text).with_context(parsing)?;
    let pretty = crate::util::json::sorted_pretty(&text).with_context(parsing)?;
    Ok(Some(ConfigFile { cfg, pretty }))
}

fn metrics(path: &Path) -> Result<Option<Metrics>> {
    if !path.is_file() {
        return Ok(None);
    }
    let (header, rows) = crate::train::metrics::read(path)?;
    Ok(Some(Metrics { header, rows }))
}

/// Reads what exists of a run directory.
pub fn read_run(run: &Path) -> Result<RunInputs> {
    let timings: Option<Timings> = json(&run.join("timings.json"))?;
    let (bs, ps) = (
        run.join("eval/samples_baseline.jsonl"),
        run.join("eval/samples_policy.jsonl"),
    );
    let samples = if bs.is_file() && ps.is_file() {
        let (b, p) = (read_samples(&bs)?, read_samples(&ps)?);
        b.iter()
            .zip(p.iter())
            .filter(|(b, p)| b.prompt == p.prompt)
            .map(|(b, p)| SidePair {
                prompt: b.prompt.clone(),
                baseline: b.responses.first().cloned().unwrap_or_default(),
                policy: p.responses.first().cloned().unwrap_or_default(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(RunInputs {
        config: config_file(&run.join("pipeline.json"))?,
        timings: timings.map(|t| t.stages).unwrap_or_default(),
        pretrain: metrics(&run.join("pretrain/metrics.csv"))?,
        sft: metrics(&run.join("sft/metrics.csv"))?,
        rm: metrics(&run.join("rm/metrics.csv"))?,
        rm_summary: json(&run.join("rm/summary.json"))?,
        ppo: metrics(&run.join("ppo/metrics.csv"))?,
        eval: json(&run.join("eval/eval.json"))?,
        eval_noptx: json(&run.join("eval_noptx/eval.json"))?,
        frontier: json(&run.join("frontier/frontier.json"))?,
        samples,
    })
}
