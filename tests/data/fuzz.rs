//! Property tests (proptest) of the JSONL readers and the ranking parser, with a fixed case count
//! so they run in seconds (`cargo test --release --test data fuzz::`). Each property runs on three
//! fixed seeds (the same cases everywhere) and one random seed, printed before it runs; a failing
//! case is kept in `tests/data/fuzz.proptest-regressions` and replayed first by every later run:
//!
//! - on arbitrary bytes (biased towards JSON punctuation and record keys) no reader panics, and
//!   every error names the file and a line that exists, or is a whole-file error ("no records",
//!   or a UTF-16 byte-order mark);
//! - in a file of valid records with some lines corrupted (syntax, type, missing field, empty
//!   text, bad UTF-8, K out of range, duplicates), the error names exactly the first corrupted
//!   line; with `--skip-invalid` the rankings reader skips exactly the semantically bad lines
//!   and keeps every valid record.

use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed};
use rlhf::data::formats::{read_prompts, read_samples, read_sft};
use rlhf::data::rankings::read_rankings;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The seeds every run tries, so that every machine checks the same cases.
const FIXED_SEEDS: [u64; 3] = [0x5eed_0001, 0x5eed_0002, 0x5eed_0003];

/// Environment variable that replaces the random seed, to rerun one a failure printed.
const SEED_ENV: &str = "RLHF_FUZZ_SEED";

thread_local! {
    /// The seed the property running on this thread draws its cases from.
    static SEED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// `cases` cases from this thread's seed. A failing case's seed is also written to
/// `tests/data/fuzz.proptest-regressions` (committed), which every later run replays first.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(SEED.with(|s| s.get())),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// Runs `property` once per fixed seed, then once on a random seed ([`SEED_ENV`] when set),
/// printing each seed first: the output of a failing test names the seed that failed.
fn on_every_seed(property: fn()) {
    let random = match std::env::var(SEED_ENV) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={v}: not a u64")),
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            t.as_nanos() as u64 ^ (std::process::id() as u64) << 32
        }
    };
    for seed in FIXED_SEEDS.into_iter().chain([random]) {
        eprintln!("fuzz seed {seed} (rerun with {SEED_ENV}={seed})");
        SEED.with(|s| s.set(seed));
        property();
    }
}

/// A fresh file holding `bytes`.
fn file(bytes: &[u8]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!("rlhf-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(format!("f{}.jsonl", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The line an error names (`path:N`), if any.
fn line_of(err: &str, path: &Path) -> Option<usize> {
    let key = format!("{}:", path.display());
    let rest = &err[err.find(&key)? + key.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Every error names the file and an existing line, or is a whole-file error.
fn check_error(err: Option<String>, path: &Path, n_lines: usize) -> Result<(), TestCaseError> {
    if let Some(e) = err {
        match line_of(&e, path) {
            Some(n) => prop_assert!((1..=n_lines).contains(&n), "line {n} of {n_lines}: {e}"),
            // The whole-file errors: no records at all, or a UTF-16 byte-order mark.
            None => prop_assert!(
                e.contains(&format!("{}: no ", path.display()))
                    || e.contains(&format!("{}: the file is UTF-16", path.display())),
                "no line in: {e}"
            ),
        }
    }
    Ok(())
}

fn bytes_strategy() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        any::<u8>().prop_map(|b| vec![b]),
        proptest::sample::select(
            [
                "{",
                "}",
                "[",
                "]",
                "\"",
                ":",
                ",",
                "\n",
                " ",
                "\\",
                "\"prompt\"",
                "\"response\"",
                "\"responses\"",
                "\"chosen\"",
                "\"rejected\"",
                "\"instruction\"",
                "\"output\"",
                "\"x\"",
                "\"\"",
                "null",
                "1",
                "\u{e9}",
                "\n\nAssistant:",
            ]
            .to_vec()
        )
        .prop_map(|s| s.as_bytes().to_vec()),
    ];
    proptest::collection::vec(piece, 0..200).prop_map(|v| v.concat())
}

#[test]
fn readers_never_panic_and_errors_name_a_real_line() {
    on_every_seed(readers_never_panic);
}

proptest! {
    #![proptest_config(config(100))]

    fn readers_never_panic(bytes in bytes_strategy()) {
        let p = file(&bytes);
        let n_lines = bytes.split(|&b| b == b'\n').count();
        check_error(read_sft(&p).err().map(|e| format!("{e:#}")), &p, n_lines)?;
        check_error(read_prompts(&p).err().map(|e| format!("{e:#}")), &p, n_lines)?;
        check_error(read_samples(&p).err().map(|e| format!("{e:#}")), &p, n_lines)?;
        for skip in [false, true] {
            check_error(read_rankings(&p, skip).err().map(|e| format!("{e:#}")), &p, n_lines)?;
        }
        std::fs::remove_file(p).ok();
    }
}

/// Text with quotes, backslashes, newlines and non-ASCII, never blank.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(vec![
            'a',
            'Z',
            ' ',
            '"',
            '\\',
            '\n',
            '\u{e9}',
            '\u{1F600}',
            '{',
            ':',
        ]),
        0..12,
    )
    .prop_map(|v| format!("t{}", v.into_iter().collect::<String>()))
}

/// How a line of a ranking file is broken (`None`: a valid record).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Break {
    Truncated,
    NotUtf8,
    OneResponse,
    TenResponses,
    Duplicate,
    NumberResponse,
    EmptyResponse,
    NoPrompt,
}

impl Break {
    /// Syntax errors stop the reader even with `--skip-invalid`.
    fn is_syntax(self) -> bool {
        matches!(self, Break::Truncated | Break::NotUtf8)
    }
}

fn ranking_line(prompt: &str, responses: &[String], brk: Option<Break>, cut: usize) -> Vec<u8> {
    let mut rs: Vec<serde_json::Value> = responses
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{r} #{i}").into())
        .collect();
    let mut obj = serde_json::json!({ "prompt": prompt });
    match brk {
        Some(Break::OneResponse) => rs.truncate(1),
        Some(Break::TenResponses) => rs = (0..10).map(|i| format!("r{i}").into()).collect(),
        Some(Break::Duplicate) => rs[1] = rs[0].clone(),
        Some(Break::NumberResponse) => rs[1] = 7.into(),
        Some(Break::EmptyResponse) => rs[0] = " ".into(),
        Some(Break::NoPrompt) => obj = serde_json::json!({}),
        _ => {}
    }
    obj["responses"] = rs.into();
    let mut line = obj.to_string().into_bytes();
    match brk {
        Some(Break::Truncated) => line.truncate(1 + cut % (line.len() - 1)),
        Some(Break::NotUtf8) => line.insert(2 + cut % (line.len() - 3), 0xff),
        _ => {}
    }
    line
}

fn break_strategy() -> impl Strategy<Value = Option<Break>> {
    prop_oneof![
        6 => Just(None),
        1 => proptest::sample::select(vec![
            Break::Truncated, Break::NotUtf8, Break::OneResponse, Break::TenResponses,
            Break::Duplicate, Break::NumberResponse, Break::EmptyResponse, Break::NoPrompt,
        ]).prop_map(Some),
    ]
}

type Line = (String, Vec<String>, Option<Break>, usize, bool);

fn lines_strategy() -> impl Strategy<Value = Vec<Line>> {
    proptest::collection::vec(
        (
            text(),
            proptest::collection::vec(text(), 2..=9),
            break_strategy(),
            any::<usize>(),
            proptest::bool::weighted(0.1), // a blank line before this one
        ),
        1..25,
    )
}

#[test]
fn rankings_errors_name_the_first_broken_line() {
    on_every_seed(rankings_first_broken_line);
}

#[test]
fn sft_errors_name_the_first_broken_line() {
    on_every_seed(sft_first_broken_line);
}

proptest! {
    #![proptest_config(config(50))]

    fn rankings_first_broken_line(lines in lines_strategy()) {
        let (mut bytes, mut no) = (Vec::new(), 0usize);
        let (mut first_bad, mut first_syntax, mut bad_semantic, mut n_valid) =
            (None, None, Vec::new(), 0usize);
        for (prompt, responses, brk, cut, blank) in &lines {
            if *blank {
                bytes.extend_from_slice(b"  \n");
                no += 1;
            }
            no += 1;
            bytes.extend(ranking_line(prompt, responses, *brk, *cut));
            bytes.push(b'\n');
            match brk {
                None => n_valid += 1,
                Some(b) => {
                    first_bad.get_or_insert(no);
                    if b.is_syntax() {
                        first_syntax.get_or_insert(no);
                    } else if first_syntax.is_none() {
                        bad_semantic.push(no);
                    }
                }
            }
        }
        let p = file(&bytes);
        match (read_rankings(&p, false), first_bad) {
            (Ok((r, _)), None) => prop_assert_eq!(r.len(), n_valid),
            (Err(e), Some(n)) => prop_assert_eq!(line_of(&format!("{e:#}"), &p), Some(n)),
            (res, want) => prop_assert!(
                false,
                "{:?} but first bad line {:?}",
                res.map(|r| r.0.len()),
                want
            ),
        }
        match (read_rankings(&p, true), first_syntax) {
            (Ok((r, rep)), None) => {
                prop_assert_eq!(r.len(), n_valid);
                let skipped: Vec<String> =
                    bad_semantic.iter().map(|n| format!("line {n}:")).collect();
                prop_assert_eq!(rep.skipped.len(), skipped.len());
                for (got, want) in rep.skipped.iter().zip(&skipped) {
                    prop_assert!(got.starts_with(want), "{} vs {}", got, want);
                }
            }
            (Err(e), Some(n)) => prop_assert_eq!(line_of(&format!("{e:#}"), &p), Some(n)),
            (Err(e), None) => prop_assert!(
                n_valid == 0 && format!("{e:#}").contains("no valid rankings"),
                "{e:#}"
            ),
            (Ok(_), Some(n)) => prop_assert!(false, "syntax error on line {} not reported", n),
        }
        std::fs::remove_file(p).ok();
    }

    fn sft_first_broken_line(
        recs in proptest::collection::vec((text(), text(), 0u8..16, any::<usize>()), 1..25)
    ) {
        let mut bytes = Vec::new();
        let mut first_bad = None;
        for (i, (prompt, response, kind, cut)) in recs.iter().enumerate() {
            let mut obj = serde_json::json!({ "prompt": prompt, "response": response });
            match kind {
                1 => obj["response"] = 17.into(),
                2 => obj = serde_json::json!({ "prompt": prompt }),
                3 => obj["response"] = "\n ".into(),
                4 => {
                    obj = serde_json::json!({
                        "instruction": prompt,
                        "input": null,
                        "output": null
                    })
                }
                _ => {}
            }
            let mut line = obj.to_string().into_bytes();
            match kind {
                5 => line.truncate(1 + cut % (line.len() - 1)),
                6 => line.insert(2 + cut % (line.len() - 3), 0xff),
                _ => {}
            }
            if (1..=6).contains(kind) {
                first_bad.get_or_insert(i + 1);
            }
            bytes.extend(line);
            bytes.push(b'\n');
        }
        let p = file(&bytes);
        match (read_sft(&p), first_bad) {
            (Ok(r), None) => prop_assert_eq!(r.len(), recs.len()),
            (Err(e), Some(n)) => {
                prop_assert_eq!(line_of(&format!("{e:#}"), &p), Some(n), "{:#}", e)
            }
            (res, want) => prop_assert!(
                false,
                "{:?} but first bad line {:?}",
                res.map(|r| r.len()),
                want
            ),
        }
        std::fs::remove_file(p).ok();
    }
}
