//! Bad input everywhere, through the binary: every file of `tests/bad_inputs/`, every broken
//! checkpoint and every bad setting made here gives exit code 1, a message with the file (and
//! line, or tensor name) and the reason, no panic, and no output that looks complete; a flag
//! outside its range is a usage error (exit code 2, `usage`). Also: a write that fails for want
//! of space, paths that are not UTF-8 (`writes`), over-long prompts and demonstrations (`cuts`),
//! a missing adapter and a failed device allocation, and a backend panic as a message with a
//! hint (exit code 3).

use crate::common;
mod cases;
mod cuts;
use crate::fixtures;
mod usage;
mod world;
// a file-size limit and non-UTF-8 names exist on Unix only
#[cfg(unix)]
mod writes;

use cases::CASES;
use fixtures::{ok, rlhf};
use std::path::PathBuf;
use world::{expand, files, world};

#[test]
fn every_bad_input_is_a_clear_error_with_exit_code_1_and_no_output() {
    let w = world();
    let files_used: Vec<&str> = CASES
        .iter()
        .map(|c| c.file)
        .filter(|f| !f.is_empty())
        .collect();
    let corpus_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs");
    let on_disk = std::fs::read_dir(&corpus_dir).unwrap().count();
    assert!(on_disk >= 20, "{on_disk} files in tests/bad_inputs");
    let mut failures = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        if c.cmd.contains("{ro}") && w.ro.is_none() {
            eprintln!(
                "note: case {i} (`--out` in a read-only directory) skipped: this user writes \
                 where permissions say it may not (root); the `--out` under a file cases take \
                 the same path"
            );
            continue;
        }
        let out = w.dir.join(format!("out{i}"));
        let args = expand(c.cmd, w, c.file, &out);
        let o = rlhf().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let mut why = Vec::new();
        if o.status.code() != Some(1) {
            why.push(format!("exit status {:?}", o.status));
        }
        for e in c.expect {
            if !err.contains(e) {
                why.push(format!("no '{e}'"));
            }
        }
        if err.contains("panicked") {
            why.push("panicked".into());
        }
        // nothing that looks like a finished output: no file, no checkpoint, no summary
        if out.is_file() || out.join("ckpt").exists() || out.join("summary.json").exists() {
            why.push(format!("{} was written", out.display()));
        }
        if !why.is_empty() {
            failures.push(format!(
                "case {i} `{}` {}: {}\n{err}",
                c.cmd,
                c.file,
                why.join(", ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    // every file of the corpus is used by some case
    for e in std::fs::read_dir(&corpus_dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(files_used.contains(&name.as_str()), "{name} is in no case");
    }
    // the refused resumes wrote nothing where they would have resumed, not even stage.json
    for (dir, before) in &w.resumes {
        let now = files(dir);
        let changed: std::collections::BTreeSet<_> = now
            .keys()
            .chain(before.keys())
            .filter(|k| now.get(*k) != before.get(*k))
            .collect();
        assert!(changed.is_empty(), "{}: {changed:?} written", dir.display());
    }
    assert_eq!(
        std::fs::read_to_string(&w.file).unwrap(),
        "not a directory",
        "the --out that is a file"
    );
}

#[test]
fn a_backend_panic_is_a_message_with_a_hint_and_exit_code_3() {
    let cases = [
        (
            "Parent device is lost",
            "hint: the GPU device was lost",
            "--resume",
        ),
        (
            "Unable to allocate buffer: OutOfMemory",
            "hint: the device could not satisfy a memory allocation",
            "--batch-size",
        ),
        (
            "No suitable adapter found",
            "hint: no usable GPU adapter",
            "--device cpu",
        ),
    ];
    for (msg, hint, flag) in cases {
        let o = rlhf()
            .args(["devices"])
            .env("RLHF_INJECT_PANIC", msg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{err}");
        assert!(
            err.contains(&format!("error: the computation failed: {msg}")),
            "{err}"
        );
        assert!(err.contains(hint) && err.contains(flag), "{err}");
        assert!(
            !err.contains("panicked at") && !err.contains("stack backtrace"),
            "{err}"
        );
    }
}

#[test]
fn no_adapter_is_a_clear_error_and_auto_falls_back_to_the_cpu() {
    // the Vulkan loader finds no driver at all
    let o = rlhf()
        .args([
            "bench",
            "train",
            "--preset",
            "tiny",
            "--steps",
            "1",
            "--batch-size",
            "2",
            "--device",
            "vulkan",
        ])
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "no wgpu adapter matches --device Vulkan (no wgpu adapters at all); \
             try `rlhf devices`, or --device cpu"
        ),
        "{err}"
    );
    let o = rlhf()
        .args([
            "bench",
            "train",
            "--preset",
            "tiny",
            "--steps",
            "1",
            "--batch-size",
            "2",
        ])
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .output()
        .unwrap();
    let err = ok(&o);
    assert!(
        err.contains("no hardware GPU adapter found") && err.contains("using the CPU backend"),
        "{err}"
    );
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn an_allocation_the_device_cannot_satisfy_is_a_clear_message() {
    // fails the test with wgpu's reason when there is no adapter
    common::wgpu_device();
    // 65536 × 64 tokens wants a 32 GiB buffer; the address-space cap makes the driver refuse it
    // at once instead of letting it try
    let o = std::process::Command::new("sh")
        .args(["-c", "ulimit -v 4000000 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_rlhf"))
        .args([
            "bench",
            "train",
            "--preset",
            "tiny",
            "--batch-size",
            "65536",
            "--steps",
            "1",
            "--device",
            "wgpu",
        ])
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    // the status in the message: a kill by a signal shows as such
    assert_eq!(o.status.code(), Some(3), "{err} ({})", o.status);
    assert!(err.contains("error: the computation failed"), "{err}");
    assert!(
        err.contains(
            "hint: the device could not satisfy a memory allocation: try a smaller --batch-size"
        ),
        "{err}"
    );
    assert!(!err.contains("panicked at"), "{err}");
}
