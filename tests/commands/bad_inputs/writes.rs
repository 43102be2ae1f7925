//! Writes that fail, and paths that are not UTF-8: a disk that fills up mid-checkpoint is an
//! error naming the file, with the previous checkpoint left whole; a path with bytes that are
//! not UTF-8 (Linux allows any byte but '/' and NUL in a name) works for inputs and outputs.

use super::world::{files, world};
use crate::fixtures::{rlhf, s};

/// The file-size limit (`ulimit -f`) stands in for a full disk: a write past it fails with
/// EFBIG as one on a full disk fails with ENOSPC, and the process must not die of SIGXFSZ.
#[cfg(unix)]
#[test]
fn a_full_disk_is_a_write_error_naming_the_file_and_keeps_the_previous_checkpoint() {
    use std::os::unix::process::CommandExt;
    let w = world();
    let out = w.dir.join("full_disk");
    crate::fixtures::copy_dir(&w.ckpt.join("ckpt"), &out.join("ckpt"));
    let before = files(&out.join("ckpt"));
    let size = |f: &str| before[std::path::Path::new(f)].len() as u64;
    let (model, optimizer) = (size("model.safetensors"), size("optimizer.bpk"));
    assert!(model < optimizer, "{model} {optimizer}");
    // the weights fit, the optimizer state does not
    let limit = (model + optimizer) / 2;
    let mut cmd = rlhf();
    cmd.args([
        "pretrain", "--device", "cpu", "--preset", "tiny", "--steps", "4",
    ])
    .args(["--batch-size", "4", "--resume", "--corpus", s(&w.corpus)])
    .args(["--tokenizer", s(&w.tok), "--out", s(&out)]);
    // SAFETY: only setrlimit, async-signal-safe, runs in the child between fork and exec
    unsafe {
        cmd.pre_exec(move || {
            let l = libc::rlimit {
                rlim_cur: limit as libc::rlim_t,
                rlim_max: limit as libc::rlim_t,
            };
            match libc::setrlimit(libc::RLIMIT_FSIZE, &l) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    // killed by SIGXFSZ, the status would have no code
    assert_eq!(o.status.code(), Some(1), "{err} ({})", o.status);
    let file = out.join("ckpt.tmp/optimizer.bpk");
    assert!(
        err.contains(&format!(
            "error: saving a checkpoint into {} (the previous one, if any, is kept): writing {}",
            out.display(),
            file.display()
        )) && err.contains("File too large"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        files(&out.join("ckpt")) == before,
        "the step-2 checkpoint changed"
    );
    assert!(!out.join("summary.json").exists());
}

/// Linux only: macOS file systems refuse names that are not UTF-8.
#[cfg(target_os = "linux")]
#[test]
fn paths_that_are_not_utf8_work_as_inputs_and_outputs() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let w = world();
    let d = w.dir.join(OsStr::from_bytes(b"not-utf8-\xff"));
    std::fs::create_dir_all(&d).unwrap();
    let name = |b: &[u8]| d.join(OsStr::from_bytes(b));
    let (corpus, tok, run) = (
        name(b"caf\xe9.txt"),
        name(b"tok\xfe.json"),
        name(b"run\xff"),
    );
    std::fs::copy(&w.corpus, &corpus).unwrap();
    std::fs::copy(&w.tok, &tok).unwrap();
    let pretrain = |corpus: &std::path::Path| {
        let mut c = rlhf();
        c.args([
            "pretrain", "--device", "cpu", "--preset", "tiny", "--steps", "1",
        ])
        .args(["--batch-size", "4", "--val-fraction", "0.1"])
        .arg("--corpus")
        .arg(corpus)
        .arg("--tokenizer")
        .arg(&tok)
        .arg("--out")
        .arg(&run);
        c.output().unwrap()
    };
    crate::fixtures::ok(&pretrain(&corpus));
    assert!(run.join("ckpt/model.safetensors").is_file());
    let (prompts, samples) = (name(b"p\xff.jsonl"), name(b"s\xff.jsonl"));
    std::fs::write(&prompts, "{\"prompt\":\"Define: Cat\"}\n").unwrap();
    let o = rlhf()
        .args([
            "sample",
            "--device",
            "cpu",
            "-k",
            "1",
            "--max-new-tokens",
            "4",
        ])
        .arg("--ckpt")
        .arg(&run)
        .arg("--prompts")
        .arg(&prompts)
        .arg("--out")
        .arg(&samples)
        .output()
        .unwrap();
    crate::fixtures::ok(&o);
    assert_eq!(
        rlhf::data::formats::read_samples(&samples).unwrap().len(),
        1
    );
    // a missing one is the usual error, the name shown with U+FFFD for the bad byte
    let o = pretrain(&name(b"missing\xff.txt"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("missing\u{fffd}.txt: No such file"), "{err}");
}
