//! This process's peak resident memory (host RSS), for the stages' summaries and the pipeline's
//! stage table: Linux's `VmHWM` (which [`reset_peak`] restarts from the current size, so a
//! stage's figure is its own), macOS's `ru_maxrss` (the process's peak so far: it cannot be
//! reset); None on Windows.

/// Peak resident memory in MiB since the last [`reset_peak`] (Linux) or the process start.
pub fn peak_rss_mib() -> Option<f64> {
    #[cfg(target_os = "macos")]
    {
        // SAFETY: getrusage only writes the struct it is given, which is zeroed and ours
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
            return None;
        }
        // in bytes on macOS (in KiB on Linux, which reads /proc instead)
        Some(u.ru_maxrss as f64 / (1024.0 * 1024.0))
    }
    #[cfg(not(target_os = "macos"))]
    {
        let s = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    }
}

/// Restarts the peak from the current resident size (Linux: `5` to `/proc/self/clear_refs`);
/// elsewhere nothing (the peak stays the process's).
pub fn reset_peak() {
    #[cfg(target_os = "linux")]
    {
        // best effort: a kernel that refuses leaves the process's peak, still an upper bound
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    use super::*;

    /// The resident size now (`VmRSS`), MiB.
    #[cfg(target_os = "linux")]
    fn rss_mib() -> Option<f64> {
        let s = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_peak_sees_a_large_allocation_and_restarts_after_a_reset() {
        let before = peak_rss_mib().unwrap();
        // 256 MiB touched page by page
        let mut v = vec![0u8; 256 << 20];
        let pages = std::hint::black_box(&mut v);
        for i in (0..pages.len()).step_by(4096) {
            pages[i] = 1;
        }
        std::hint::black_box(&*pages);
        let during = peak_rss_mib().unwrap();
        assert!(during >= before + 200.0, "{before} -> {during} MiB");
        drop(v);
        reset_peak();
        // restarted from the resident size of now (which the freed pages may or may not have
        // left, depending on the allocator)
        let after = peak_rss_mib().unwrap();
        let now = rss_mib().unwrap();
        assert!(
            after <= now + 32.0,
            "after a reset {after} MiB, resident {now} MiB"
        );
        assert!(
            after <= during,
            "after a reset {after} MiB, peak was {during}"
        );
    }
}
