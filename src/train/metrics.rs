//! `metrics.csv`: one row per logged step, namespaced column names (`loss/train`, `lr`, ...), each
//! row a [`MetricRow`] whose unmeasured values are [`Absent`].
//! Rows are flushed as they are written so a crash keeps everything logged so far; on resume the
//! file is appended to, and rows past the resumed step are dropped first.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A value not measured at a step: NaN for a number (an empty cell in `metrics.csv`), every
/// field absent for a group of statistics. A stage's row is absent but for what its step
/// measured, so no column can show a number that was not measured.
pub trait Absent {
    fn absent() -> Self;
}

impl Absent for f64 {
    fn absent() -> Self {
        f64::NAN
    }
}

/// Implements [`Absent`] for a struct whose fields are all [`Absent`], naming every field (a
/// field left out is a compile error, not a silent zero).
macro_rules! absent_fields {
    ($t:ty { $($field:ident),+ $(,)? }) => {
        impl $crate::train::metrics::Absent for $t {
            fn absent() -> Self {
                Self {
                    $($field: $crate::train::metrics::Absent::absent()),+
                }
            }
        }
    };
}
pub(crate) use absent_fields;

/// A `metrics.csv` row that names its own columns, so names and numbers cannot drift apart.
pub trait MetricRow: Absent + Clone {
    /// `(column, value)` in column order; NaN is written as an empty cell.
    fn fields(&self) -> Vec<(&'static str, f64)>;

    /// The column names (the header after `step`).
    fn columns() -> Vec<&'static str> {
        Self::absent()
            .fields()
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }
}

pub struct MetricsWriter {
    path: PathBuf,
    columns: Vec<String>,
    file: std::fs::File,
}

impl MetricsWriter {
    /// Opens `dir/metrics.csv` with the given columns (the first is always `step`). With
    /// `resume_from = Some(step)`, rows with a step above it are removed; otherwise it starts anew.
    pub fn open(dir: &Path, columns: &[&str], resume_from: Option<usize>) -> Result<Self> {
        let path = dir.join("metrics.csv");
        let mut columns: Vec<String> = columns.iter().map(|s| s.to_string()).collect();
        columns.insert(0, "step".into());
        let header = columns.join(",");
        let mut kept = vec![header.clone()];
        if let (Some(s), true) = (resume_from, path.exists()) {
            let text = std::fs::read_to_string(&path)?;
            for line in text.lines().skip(1) {
                let step: usize = line
                    .split(',')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(usize::MAX);
                if step <= s {
                    kept.push(line.to_string());
                }
            }
        }
        let mut body = kept.join("\n");
        body.push('\n');
        crate::util::fs::write_atomic(&path, body.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self {
            path,
            columns,
            file,
        })
    }

    /// Appends a row; `values` follow the columns given to `open` (NaN written as empty).
    pub fn row(&mut self, step: usize, values: &[f64]) -> Result<()> {
        let mut line = step.to_string();
        for v in values {
            line.push(',');
            if v.is_finite() {
                line.push_str(&format!("{v:.6}"));
            }
        }
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.file.flush().ok();
        Ok(())
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }
}

/// Reads a metrics CSV into (header, rows); empty cells become NaN.
pub fn read(path: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(|s| s.to_string())
        .collect();
    let rows = lines
        .map(|l| {
            l.split(',')
                .map(|v| v.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    Ok((header, rows))
}

/// A progress bar in the project's style, hidden when stderr is not a terminal.
pub fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(&format!(
        "{what:>9} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {{msg}}"
    ))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    pb.set_style(style);
    pb
}

/// Prints a line above the progress bar, or plainly on stderr when the bar is hidden (stderr not
/// a terminal), where `ProgressBar::println` would print nothing.
pub fn log_line(pb: &indicatif::ProgressBar, line: impl AsRef<str>) {
    if pb.is_hidden() {
        eprintln!("{}", line.as_ref());
    } else {
        pb.println(line.as_ref());
    }
}
