//! The files of a human labeling session, kept crash-safe.
//!
//! - `OUT` (e.g. `rankings.jsonl`): one `{"prompt","responses":[best, ...]}` record per ranked
//!   prompt, appended, flushed and fsynced as soon as the person enters it.
//! - `OUT.progress`: a JSONL log of every action in order, `{"action":"ranked"|"skipped",
//!   "prompt":...}`. It lets a restarted session pass over skipped prompts too, and lets `u` undo
//!   the last action even one made before a restart.
//!
//! A ranking is written to `OUT` before its log entry, and an undo rewrites `OUT` (atomically)
//! before the log, so a crash between the two leaves the files disagreeing in one known way;
//! [`Store::open`] reconciles them (the rankings file wins). A last line cut short by a crash
//! mid-write is dropped with a notice; any other malformed line is an error naming file and line.

use crate::data::rankings::Ranking;
use crate::util::fs::write_atomic;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the person did with one prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Ranked,
    Skipped,
}

/// One line of the progress log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub action: Action,
    pub prompt: String,
}

/// The rankings file and its progress log, in memory and on disk.
pub struct Store {
    out: PathBuf,
    progress: PathBuf,
    rankings: Vec<Ranking>,
    log: Vec<LogEntry>,
    /// Messages about repairs made when opening (shown to the person).
    pub notices: Vec<String>,
}

/// `OUT.progress`: the sidecar log next to the rankings file.
pub fn progress_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".progress");
    out.with_file_name(name)
}

/// Parses a JSONL file into records; a cut-off last line (no final newline) that does not parse
/// is dropped and reported in the second value.
fn read_lines<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<(Vec<T>, Option<String>)> {
    if !path.exists() {
        return Ok((Vec::new(), None));
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    // a file edited on Windows: a byte-order mark is dropped here, and a `\r` before the `\n` is
    // whitespace to the JSON parser, so its lines are the same records
    let text = std::str::from_utf8(crate::data::formats::strip_bom(path, &bytes)?)
        .with_context(|| format!("{}: not valid UTF-8", path.display()))?;
    let complete = text.ends_with('\n') || text.is_empty();
    let lines: Vec<&str> = text.split('\n').collect();
    let (mut out, mut dropped) = (Vec::new(), None);
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(line) {
            Ok(r) => out.push(r),
            Err(_) if !complete && i + 1 == lines.len() => {
                dropped = Some(format!(
                    "{}:{}: dropped a record cut short by an interrupted write",
                    path.display(),
                    i + 1
                ));
            }
            Err(e) => bail!("{}:{}: malformed record: {e}", path.display(), i + 1),
        }
    }
    Ok((out, dropped))
}

fn to_jsonl<T: Serialize>(records: &[T]) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    for r in records {
        serde_json::to_writer(&mut buf, r)?;
        buf.push(b'\n');
    }
    Ok(buf)
}

/// Appends one record as a line, then flushes and fsyncs the file.
fn append_line<T: Serialize>(path: &Path, record: &T) -> Result<()> {
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(&line)
        .and_then(|_| f.flush())
        .and_then(|_| f.sync_data())
        .with_context(|| format!("writing {}", path.display()))
}

impl Store {
    /// Opens (or starts) the rankings file `out` and its log, reconciling them.
    pub fn open(out: &Path) -> Result<Self> {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let progress = progress_path(out);
        let (rankings, cut_r) = read_lines::<Ranking>(out)?;
        let (log, cut_l) = read_lines::<LogEntry>(&progress)?;
        let mut store = Self {
            out: out.to_path_buf(),
            progress,
            rankings,
            log,
            notices: cut_r.into_iter().chain(cut_l).collect(),
        };
        let old_len = store.log.len();
        let reconciled = reconcile(&store.rankings, &store.log);
        let changed = reconciled != store.log;
        store.log = reconciled;
        if !store.notices.is_empty() {
            write_atomic(&store.out, &to_jsonl(&store.rankings)?)?;
        }
        if changed || !store.notices.is_empty() {
            if changed {
                store.notices.push(format!(
                    "{}: brought in line with {} ({} entries, was {old_len})",
                    store.progress.display(),
                    store.out.display(),
                    store.log.len()
                ));
            }
            write_atomic(&store.progress, &to_jsonl(&store.log)?)?;
        }
        Ok(store)
    }

    /// How many times each prompt has been dealt with (ranked or skipped).
    pub fn done_counts(&self) -> HashMap<&str, usize> {
        let mut m: HashMap<&str, usize> = HashMap::new();
        for e in &self.log {
            *m.entry(e.prompt.as_str()).or_default() += 1;
        }
        m
    }

    /// Records in the rankings file.
    pub fn ranked(&self) -> usize {
        self.rankings.len()
    }

    /// Prompts skipped (and not undone).
    pub fn skipped(&self) -> usize {
        self.log
            .iter()
            .filter(|e| e.action == Action::Skipped)
            .count()
    }

    /// Appends a ranking (fsynced), then its log entry.
    pub fn add_ranking(&mut self, r: Ranking) -> Result<()> {
        append_line(&self.out, &r)?;
        let e = LogEntry {
            action: Action::Ranked,
            prompt: r.prompt.clone(),
        };
        self.rankings.push(r);
        append_line(&self.progress, &e)?;
        self.log.push(e);
        Ok(())
    }

    /// Logs a skipped prompt (fsynced).
    pub fn add_skip(&mut self, prompt: &str) -> Result<()> {
        let e = LogEntry {
            action: Action::Skipped,
            prompt: prompt.to_string(),
        };
        append_line(&self.progress, &e)?;
        self.log.push(e);
        Ok(())
    }

    /// Undoes the last action: a ranking is removed from the rankings file (rewritten
    /// atomically), a skip from the log. Returns what was undone, or None when nothing was done.
    pub fn undo(&mut self) -> Result<Option<LogEntry>> {
        let Some(last) = self.log.last().cloned() else {
            return Ok(None);
        };
        if last.action == Action::Ranked {
            // reconcile guarantees a ranking of this prompt exists; the last one is it
            if let Some(i) = self.rankings.iter().rposition(|r| r.prompt == last.prompt) {
                self.rankings.remove(i);
            }
            write_atomic(&self.out, &to_jsonl(&self.rankings)?)?;
        }
        self.log.pop();
        write_atomic(&self.progress, &to_jsonl(&self.log)?)?;
        Ok(Some(last))
    }
}

/// The log made consistent with the rankings file: a "ranked" entry is kept only while an
/// unmatched ranking of its prompt remains; rankings no entry accounts for get entries at the end.
pub fn reconcile(rankings: &[Ranking], log: &[LogEntry]) -> Vec<LogEntry> {
    let mut left: HashMap<&str, usize> = HashMap::new();
    for r in rankings {
        *left.entry(r.prompt.as_str()).or_default() += 1;
    }
    let mut out = Vec::new();
    for e in log {
        if e.action == Action::Ranked {
            match left.get_mut(e.prompt.as_str()) {
                Some(n) if *n > 0 => *n -= 1,
                _ => continue,
            }
        }
        out.push(e.clone());
    }
    // rankings with no entry: the last `n` of that prompt in file order
    let mut extra: Vec<(usize, &str)> = Vec::new();
    for (p, &n) in &left {
        let idx: Vec<usize> = rankings
            .iter()
            .enumerate()
            .filter(|(_, r)| r.prompt == *p)
            .map(|(i, _)| i)
            .collect();
        extra.extend(idx[idx.len() - n..].iter().map(|&i| (i, *p)));
    }
    extra.sort();
    out.extend(extra.into_iter().map(|(_, p)| LogEntry {
        action: Action::Ranked,
        prompt: p.to_string(),
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rk(p: &str) -> Ranking {
        Ranking {
            prompt: p.into(),
            responses: vec!["a".into(), "b".into()],
        }
    }
    fn e(a: Action, p: &str) -> LogEntry {
        LogEntry {
            action: a,
            prompt: p.into(),
        }
    }

    #[test]
    fn reconcile_adds_missing_and_drops_stale_entries() {
        use Action::*;
        // crash after the ranking of "c" was written but before its log entry
        let log = vec![e(Ranked, "a"), e(Skipped, "b")];
        let got = reconcile(&[rk("a"), rk("c")], &log);
        assert_eq!(got, vec![e(Ranked, "a"), e(Skipped, "b"), e(Ranked, "c")]);
        // crash during undo: "c" removed from the rankings, log not yet rewritten
        let log = vec![e(Ranked, "a"), e(Skipped, "b"), e(Ranked, "c")];
        let got = reconcile(&[rk("a")], &log);
        assert_eq!(got, vec![e(Ranked, "a"), e(Skipped, "b")]);
    }

    #[test]
    fn cut_last_line_is_dropped_other_errors_are_not() {
        let d = std::env::temp_dir().join(format!("rlhf-store-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let out = d.join("r.jsonl");
        std::fs::write(
            &out,
            "{\"prompt\":\"a\",\"responses\":[\"x\",\"y\"]}\n{\"prompt\":\"b\",\"resp",
        )
        .unwrap();
        let s = Store::open(&out).unwrap();
        assert_eq!(s.ranked(), 1);
        assert_eq!(s.notices.len(), 2, "{:?}", s.notices);
        assert!(std::fs::read_to_string(&out).unwrap().ends_with("]}\n"));
        std::fs::write(&out, "{oops\n{\"prompt\":\"a\",\"responses\":[]}\n").unwrap();
        let err = format!("{:#}", Store::open(&out).err().unwrap());
        assert!(err.contains("r.jsonl:1"), "{err}");
    }
}
