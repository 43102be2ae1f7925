//! Crash-safe file operations, and the file-system rules that differ between the systems the
//! crate is built for (Linux and macOS: [`Os::Unix`]; Windows).
//!
//! Atomic writes go to a temporary name in the same directory, are flushed, then renamed into
//! place, so a crash never leaves a half-written file under the final name. Renames are made
//! durable (their directory flushed where the system allows it) and, on Windows, tried again
//! while another process briefly holds the file open.

use anyhow::{Context, Result};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The systems whose file-system rules differ here. Every decision that depends on the system is
/// a method, so tests on Linux check the Windows rules too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Linux and macOS (POSIX `fsync` and `rename`).
    Unix,
    /// Windows (`FlushFileBuffers`, `MoveFileEx`).
    Windows,
}

impl Os {
    /// The system this binary was built for.
    pub const HOST: Os = if cfg!(windows) { Os::Windows } else { Os::Unix };

    /// Whether a file is opened for writing to flush it. Windows' `FlushFileBuffers` (what
    /// `sync_all` calls there) fails with "access denied" on a handle without write access; Unix
    /// `fsync` takes any descriptor, and a read-only open there also flushes a file we may not
    /// write.
    pub fn flush_opens_for_write(self) -> bool {
        self == Os::Windows
    }

    /// Whether a directory is flushed after a rename in it. On Unix a rename (or a new file) is
    /// durable only once its directory is fsynced; Windows cannot flush a directory handle, and
    /// NTFS journals the rename itself.
    pub fn syncs_directories(self) -> bool {
        self == Os::Unix
    }

    /// How many times a rename is tried while it fails with an error [`Os::may_clear`] says can
    /// pass.
    pub fn rename_attempts(self) -> u32 {
        match self {
            Os::Unix => 1,
            Os::Windows => 8,
        }
    }

    /// Whether a rename's error may clear by itself. On Windows a file with an open handle in
    /// another process (an antivirus scan of a file just written, the search indexer, someone
    /// reading the checkpoint) cannot be renamed, nor its directory, until the handle closes,
    /// usually within milliseconds: "access denied", or a sharing or lock violation (Windows
    /// error codes 32 and 33, which std does not name). On Unix open files never block a rename,
    /// so every error is final.
    pub fn may_clear(self, e: &std::io::Error) -> bool {
        self == Os::Windows
            && (e.kind() == ErrorKind::PermissionDenied
                || matches!(e.raw_os_error(), Some(32 | 33)))
    }
}

/// The temporary sibling name used while `path` is being written.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all().ok();
    }
    rename(&tmp, path)
}

/// Renames a fully written temporary file or directory into place. An existing directory at
/// `path` is removed first: no system renames a directory over a non-empty one (Windows not even
/// over an empty one).
pub fn commit(tmp: &Path, path: &Path) -> Result<()> {
    if path.exists() && path.is_dir() {
        std::fs::remove_dir_all(path).with_context(|| format!("replacing {}", path.display()))?;
    }
    rename(tmp, path)
}

/// Renames `from` to `to` (a file replaces a file at `to`; a directory needs `to` absent), tries
/// again while Windows refuses it for a handle another process holds, and flushes the directory
/// of `to` so the new name survives a power loss.
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    retry_refused(Os::HOST, || std::fs::rename(from, to))
        .with_context(|| format!("renaming {} to {}", from.display(), to.display()))?;
    sync_dir(parent_dir(to))
}

/// Runs `op` until it succeeds, fails with an error that cannot clear ([`Os::may_clear`]), or has
/// been tried [`Os::rename_attempts`] times, waiting 10 ms, 20 ms, 40 ms, ... in between (1.3 s
/// in all on Windows).
pub fn retry_refused(os: Os, mut op: impl FnMut() -> std::io::Result<()>) -> std::io::Result<()> {
    let mut wait = Duration::from_millis(10);
    let mut attempt = 1;
    loop {
        match op() {
            Err(e) if os.may_clear(&e) && attempt < os.rename_attempts() => {
                std::thread::sleep(wait);
                wait *= 2;
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// Creates a stage's output directory (and its parents), naming it in the error, so an `--out`
/// that is a file, lies under one, or is in a directory this user may not write fails with its
/// path instead of the bare OS error.
pub fn create_out_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!(
            "--out {} is a file, not a directory; give a new directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the output directory {}", dir.display()))
}

/// Creates the directory an output file goes into, naming it in the error (see
/// [`create_out_dir`]).
pub fn create_parent_dir(file: &Path) -> Result<()> {
    match file.parent() {
        Some(p) if p.exists() && !p.is_dir() => anyhow::bail!(
            "cannot write {}: {} is a file, not a directory",
            file.display(),
            p.display()
        ),
        Some(p) if !p.as_os_str().is_empty() => std::fs::create_dir_all(p).with_context(|| {
            format!(
                "creating {}, the directory of {}",
                p.display(),
                file.display()
            )
        }),
        _ => Ok(()),
    }
}

/// Makes a write past the file-size limit (`ulimit -f`, RLIMIT_FSIZE) an error instead of a kill:
/// by default the kernel ends the process with SIGXFSZ, with no message and a half-written
/// temporary file. Ignored, the write fails with EFBIG, which reaches the user as an error naming
/// the file, as a full disk's ENOSPC does. Called once, first thing in `main`.
pub fn fail_writes_past_the_size_limit() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to "ignore" installs no handler code; it is done
    // before any other thread exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Flushes a written file's data and metadata to disk (see [`Os::flush_opens_for_write`]).
pub fn flush_file(path: &Path) -> Result<()> {
    flush_file_on(Os::HOST, path)
}

/// [`flush_file`] with the rules of `os` (tests run the Windows rules on Linux).
pub fn flush_file_on(os: Os, path: &Path) -> Result<()> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(os.flush_opens_for_write())
        .open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("flushing {} to disk", path.display()))
}

/// Flushes a directory's entries (new and renamed names) to disk where the system can (see
/// [`Os::syncs_directories`]).
pub fn sync_dir(dir: &Path) -> Result<()> {
    sync_dir_on(Os::HOST, dir)
}

/// [`sync_dir`] with the rules of `os`.
pub fn sync_dir_on(os: Os, dir: &Path) -> Result<()> {
    if !os.syncs_directories() {
        return Ok(());
    }
    let f = std::fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    match f.sync_all() {
        // some file systems (network and FUSE mounts) cannot fsync a directory (EINVAL, ENOTSUP):
        // there the rename is as durable as that file system makes it
        Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported) => Ok(()),
        r => r.with_context(|| format!("flushing directory {} to disk", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Error;

    #[test]
    fn rules_per_system() {
        assert!(Os::Windows.flush_opens_for_write());
        assert!(!Os::Unix.flush_opens_for_write());
        assert!(Os::Unix.syncs_directories());
        assert!(!Os::Windows.syncs_directories());
        assert_eq!(Os::Unix.rename_attempts(), 1);
        assert!(Os::Windows.rename_attempts() > 1);
        assert_eq!(Os::HOST, if cfg!(windows) { Os::Windows } else { Os::Unix });
    }

    /// An operation refused `refusals` times, then done; counts its calls.
    fn refused(refusals: u32, calls: &mut u32) -> impl FnMut() -> std::io::Result<()> + '_ {
        move || {
            *calls += 1;
            if *calls <= refusals {
                Err(Error::from(ErrorKind::PermissionDenied))
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn windows_tries_a_refused_rename_again_unix_does_not() {
        let mut calls = 0;
        retry_refused(Os::Windows, refused(2, &mut calls)).unwrap();
        assert_eq!(calls, 3);
        // ERROR_SHARING_VIOLATION, which std has no kind for; on Linux 32 is EPIPE: final
        let sharing = Error::from_raw_os_error(32);
        assert!(Os::Windows.may_clear(&sharing) && !Os::Unix.may_clear(&sharing));
        let mut calls = 0;
        let e = retry_refused(Os::Unix, refused(2, &mut calls)).unwrap_err();
        assert_eq!((e.kind(), calls), (ErrorKind::PermissionDenied, 1));
        // a refusal that lasts: given up after the last attempt, with the OS's error
        let mut calls = 0;
        let e = retry_refused(Os::Windows, refused(u32::MAX, &mut calls)).unwrap_err();
        assert_eq!((e.kind(), calls), (ErrorKind::PermissionDenied, 8));
        // other errors are final at once
        let mut calls = 0;
        let e = retry_refused(Os::Windows, || {
            calls += 1;
            Err(Error::from(ErrorKind::NotFound))
        })
        .unwrap_err();
        assert_eq!((e.kind(), calls), (ErrorKind::NotFound, 1));
    }
}
