//! The command boundary's last line of defence. A panic — in practice from the compute backend:
//! no usable adapter, a lost device, an allocation the device cannot satisfy — becomes a short
//! message with a suggestion and exit code [`PANIC_EXIT_CODE`], not a backtrace. The hook exits
//! the process itself, so a panic on a backend worker thread cannot leave the command hanging.
//! `RUST_BACKTRACE=1` adds the backtrace for bug reports.

/// Exit code after a panic (1 is an ordinary error, 2 a command-line usage error).
pub const PANIC_EXIT_CODE: i32 = 3;

/// Test hook: `RLHF_INJECT_PANIC=<message>` makes [`inject`] panic with that message, so the
/// tests can check what a backend failure looks like to the user. Leave it unset in real runs.
pub const INJECT_PANIC_ENV: &str = "RLHF_INJECT_PANIC";

/// Panics with the message of `RLHF_INJECT_PANIC` when it is set (see [`INJECT_PANIC_ENV`]).
/// The variable is read once per process; every later call is one load of the saved answer.
pub fn inject() {
    static MESSAGE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if let Some(m) = MESSAGE.get_or_init(|| std::env::var(INJECT_PANIC_ENV).ok()) {
        panic!("{m}");
    }
}

/// What to suggest for a panic message.
pub fn hint(message: &str) -> &'static str {
    let m = message.to_lowercase();
    let any = |keys: &[&str]| keys.iter().any(|k| m.contains(k));
    if any(&[
        "out of memory",
        "outofmemory",
        "allocat",
        "max_buffer_size",
        "buffer size",
        "too large",
    ]) {
        "the device could not satisfy a memory allocation: try a smaller --batch-size (or a \
         smaller --preset / --n-ctx), or --device cpu"
    } else if m.contains("lost") && any(&["device", "gpu", "adapter"]) {
        "the GPU device was lost (a driver reset or crash): rerun the command with --resume to \
         continue from the last checkpoint, or use --device cpu"
    } else if any(&["adapter", "no suitable", "request_device", "requestdevice"]) {
        "no usable GPU adapter: see `rlhf devices`, or use --device cpu"
    } else {
        "this is a bug or a failure of the compute backend: try --device cpu, and report it with \
         the output of RUST_BACKTRACE=1"
    }
}

/// A backend's multi-line error chain cut to its first line and its last causes (where the
/// reason is), without the "No backtrace available" filler.
pub fn condense(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.contains("No backtrace available"))
        .filter(|l| l.trim() != "Asked at:")
        .collect();
    if lines.len() <= 6 {
        return lines.join("\n");
    }
    let tail = &lines[lines.len() - 4..];
    format!(
        "{}\n  [{} lines left out]\n{}",
        lines[0],
        lines.len() - 5,
        tail.join("\n")
    )
}

/// Installs the hook; `main` calls it first.
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let at = info
            .location()
            .map(|l| format!(" (at {}:{})", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: the computation failed: {}{at}", condense(&msg));
        eprintln!("hint: {}", hint(&msg));
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
        exit_now(PANIC_EXIT_CODE);
    }));
}

/// Ends the process with `code` at once, after flushing what it printed. Not
/// `std::process::exit`: that runs the C exit handlers, among them the GPU driver's teardown
/// (Mesa's, LLVM's), while the backend's other threads are still using the driver after a
/// failure: the process then died by SIGSEGV or SIGABRT after printing its message, 3 times in
/// 12 runs of `tests/commands/bad_inputs.rs`'s allocation test on a loaded machine.
fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    #[cfg(unix)]
    // SAFETY: _exit ends the process without running any handler; nothing runs after it.
    unsafe {
        libc::_exit(code)
    }
    #[cfg(not(unix))]
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_by_failure_kind() {
        assert!(hint("Unable to allocate 4 GiB: OutOfMemory").contains("--batch-size"));
        assert!(
            hint("Buffer size 8589934592 is greater than the maximum buffer size")
                .contains("--batch-size")
        );
        assert!(hint("Parent device is lost").contains("--resume"));
        assert!(hint("DeviceLost").contains("--resume"));
        assert!(hint("No suitable adapter found").contains("rlhf devices"));
        assert!(hint("index out of bounds").contains("RUST_BACKTRACE"));
    }

    #[test]
    fn condense_keeps_head_and_causes() {
        let m = "Execution(failed\
                 \nCaused by:\n  a\n  b\n  c\
                 \nCaused by:\n  IO\
                 \nCaused by:\n  can't allocate buffer of size: 8\
                 \nNo backtrace available\nAsked at:\nNo backtrace available)";
        let c = condense(m);
        assert_eq!(c.lines().count(), 6, "{c}");
        assert!(
            c.starts_with("Execution(failed\n  [4 lines left out]"),
            "{c}"
        );
        assert!(c.ends_with("can't allocate buffer of size: 8"), "{c}");
        assert_eq!(condense("short"), "short");
    }
}
