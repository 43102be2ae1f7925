//! Usage errors exit with code 2 (clap's own, and the flags whose range depends on nothing
//! else: `src/cli/ranges.rs`), before anything is read or written; each flag is refused with the
//! same message by every command that takes it.

use super::world::world;
use crate::fixtures::rlhf;

/// (command, what the message must contain).
#[rustfmt::skip]
const USAGE: &[(&str, &[&str])] = &[
    (
        "pretrain --bogus --corpus c.txt --tokenizer t.json --out {out}",
        &["unexpected argument '--bogus' found"],
    ),
    (
        "pretrain --corpus c.txt --tokenizer t.json",
        &["the following required arguments were not provided", "--out <OUT>"],
    ),
    (
        "sample --ckpt c --prompts p.jsonl -k abc --out {out}",
        &["invalid value 'abc' for '--k <K>': invalid digit found in string"],
    ),
    (
        "pipeline -k 10 --out {out}",
        &["invalid value '10' for '--k <K>': must be between 2 and 9 \
           (the ranking loss takes at most 9 responses per prompt)"],
    ),
    ("pipeline -k 1 --out {out}", &["invalid value '1' for '--k <K>': must be between 2 and 9"]),
];

/// Each command with its required flags (the files need not exist: nothing is read).
#[rustfmt::skip]
const COMMANDS: &[(&str, &str)] = &[
    ("pretrain", "pretrain --device cpu --corpus c.txt --tokenizer t.json --out {out}"),
    ("sft", "sft --device cpu --init c --data d.jsonl --out {out}"),
    ("rm", "rm --device cpu --init c --data d.jsonl --out {out}"),
    ("dpo", "dpo --device cpu --init c --data d.jsonl --out {out}"),
];

/// Every command of [`COMMANDS`].
const ALL: &[&str] = &["pretrain", "sft", "rm", "dpo"];
/// Every command of [`COMMANDS`] but `dpo`.
const NOT_DPO: &[&str] = &["pretrain", "sft", "rm"];

/// (flag, values outside its range, the range as the message says it, the commands taking it).
#[rustfmt::skip]
const RANGES: &[(&str, &[&str], &str, &[&str])] = &[
    ("--lr", &["NaN", "0", "-1e-3", "1e300", "inf"], "must be a number in (0, 1]", ALL),
    ("--batch-size", &["0", "100000000000", "-1"], "must be between 1 and 65536", ALL),
    ("--dropout", &["NaN", "1", "-0.1", "1e300"], "must be a number in [0, 1)", NOT_DPO),
    ("--val-fraction", &["NaN", "0", "1", "1e300"], "must be a number in (0, 1)", ALL),
    ("--beta", &["NaN", "0", "1e300"], "must be a number in (0, 1000]", &["dpo"]),
];

/// Runs `cmd` (`{out}` replaced); a failure description unless it exits with 2, says every
/// `expect`, does not panic and creates no `{out}`.
fn check(cmd: &str, expect: &[&str]) -> Option<String> {
    let out = world().dir.join("usage_out");
    let args: Vec<String> = cmd
        .split_whitespace()
        .map(|a| a.replace("{out}", crate::fixtures::s(&out)))
        .collect();
    let o = rlhf().args(&args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let mut why: Vec<String> = expect
        .iter()
        .filter(|e| !err.contains(*e))
        .map(|e| format!("no '{e}'"))
        .collect();
    if o.status.code() != Some(2) {
        why.push(format!("exit status {:?}", o.status));
    }
    if err.contains("panicked") || out.exists() {
        why.push("panicked or wrote its --out".into());
    }
    (!why.is_empty()).then(|| format!("`{cmd}`: {}\n{err}", why.join(", ")))
}

#[test]
fn usage_errors_and_flags_out_of_range_exit_with_code_2_naming_the_flag_and_range() {
    let mut failures: Vec<String> = USAGE.iter().filter_map(|(c, e)| check(c, e)).collect();
    let mut n = USAGE.len();
    for (flag, values, range, commands) in RANGES {
        for name in *commands {
            let base = COMMANDS.iter().find(|(c, _)| c == name).unwrap().1;
            for v in *values {
                // `--flag=value`: a value starting with '-' is not read as a flag
                let cmd = format!("{base} {flag}={v}");
                let said = format!("invalid value '{v}' for '{flag} <");
                failures.extend(check(&cmd, &[&said, range]));
                n += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
