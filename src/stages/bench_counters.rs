//! What one training step or one generated token costs the host, for `rlhf bench`: kernel
//! dispatches (every launch CubeCL issues, seen through its launch observer), host ↔ device
//! transfers (`util::tensors::Transfers`: reads that wait for the device, bytes each way) and host
//! milliseconds (CPU time, so time spent waiting for the device is not counted, of the threads
//! that work for the program, not the driver's: see [`host_cpu_ns`]).

use crate::util::tensors::Transfers;
use burn::cubecl::logging::{LaunchObservation, LaunchObserver};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Counts launches by kernel name.
#[derive(Default)]
struct Dispatches(Mutex<HashMap<&'static str, u64>>);

impl LaunchObserver for Dispatches {
    fn launched(&self, kernel: &'static str) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(kernel).or_default() += 1;
        }
    }
}

/// Counting from [`Counting::start`] until [`Counting::finish`].
pub struct Counting {
    dispatches: Arc<Dispatches>,
    _watch: LaunchObservation,
    transfers: Transfers,
    host_ns: Option<(u64, u64)>,
}

/// Totals over a counted span ([`Counts::json_fields`] divides them by the steps or tokens).
#[derive(Debug, Clone)]
pub struct Counts {
    pub dispatches: u64,
    /// The most launched kernels, most first (names without path or type parameters).
    pub top: Vec<(String, u64)>,
    pub transfers: Transfers,
    /// CPU time of the program's own threads ([`host_cpu_ns`]); None where the platform gives
    /// no CPU time.
    pub host_ms: Option<f64>,
    /// CPU time of every thread of the process (on the CPU backend: the compute itself).
    pub process_ms: Option<f64>,
}

impl Counting {
    pub fn start() -> Self {
        let dispatches = Arc::new(Dispatches::default());
        let watch = LaunchObservation::new(dispatches.clone());
        Self {
            dispatches,
            _watch: watch,
            transfers: Transfers::now(),
            host_ns: host_cpu_ns(),
        }
    }

    pub fn finish(self) -> Counts {
        let transfers = Transfers::since(self.transfers);
        let spent = match (self.host_ns, host_cpu_ns()) {
            (Some(a), Some(b)) => Some((b.0.saturating_sub(a.0), b.1.saturating_sub(a.1))),
            _ => None,
        };
        let host_ms = spent.map(|s| s.0 as f64 / 1e6);
        let process_ms = spent.map(|s| s.1 as f64 / 1e6);
        drop(self._watch);
        let map = self
            .dispatches
            .0
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        let mut top: Vec<(String, u64)> = map.iter().map(|(k, v)| (short_name(k), *v)).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(6);
        Counts {
            dispatches: map.values().sum(),
            top,
            transfers,
            host_ms,
            process_ms,
        }
    }
}

fn per_unit(ms: Option<f64>, n: f64) -> String {
    ms.map(|m| format!("{:.2}", m / n)).unwrap_or("null".into())
}

/// `a::b::Kernel<T, …>` → `Kernel` (the type parameters of a generated kernel run to pages).
fn short_name(name: &str) -> String {
    let base = name.split('<').next().unwrap_or(name);
    base.rsplit("::").next().unwrap_or(base).to_string()
}

impl Counts {
    /// The counts per unit as JSON fields (`"dispatches_per_step":…` for unit `step`).
    pub fn json_fields(&self, per: usize, unit: &str) -> String {
        let n = per.max(1) as f64;
        let t = &self.transfers;
        let top: Vec<String> = self
            .top
            .iter()
            .map(|(k, v)| format!("[\"{}\",{:.1}]", k.replace('"', "'"), *v as f64 / n))
            .collect();
        format!(
            "\"dispatches_per_{unit}\":{:.1},\"syncs_per_{unit}\":{:.2},\
             \"bytes_up_per_{unit}\":{:.0},\"bytes_down_per_{unit}\":{:.0},\
             \"host_ms_per_{unit}\":{},\"process_cpu_ms_per_{unit}\":{},\
             \"top_kernels_per_{unit}\":[{}]",
            self.dispatches as f64 / n,
            t.syncs as f64 / n,
            t.bytes_up as f64 / n,
            t.bytes_down as f64 / n,
            per_unit(self.host_ms, n),
            per_unit(self.process_ms, n),
            top.join(",")
        )
    }
}

/// CPU nanoseconds so far of (the calling thread and CubeCL's device-service threads, every
/// thread of the process). The first is the host's work on the program's behalf: the thread
/// that runs the step (autodiff, the loop) and the threads CubeCL names `DS…` that run burn's
/// ops, fuse, compile and submit them; a driver's own threads are left out (on lavapipe they
/// are the "device": its shaders run on them). Linux reads /proc/self/task/*/schedstat (these
/// threads live as long as the process) and the process clock; on other Unixes both are the
/// process's CPU time; elsewhere None.
pub fn host_cpu_ns() -> Option<(u64, u64)> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions
        let me = unsafe { libc::gettid() }.to_string();
        let mut host = 0u64;
        for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let dir = entry.path();
            let stat = std::fs::read_to_string(dir.join("schedstat")).unwrap_or_default();
            let ns = stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if entry.file_name().to_string_lossy() == me || comm.starts_with("DS") {
                host += ns;
            }
        }
        // the whole process from the kernel's own clock: it keeps the time of threads that
        // have exited (the CPU backend's micro-batch threads live for one step), which the
        // per-thread files lose
        // SAFETY: clock_gettime only writes the struct it is given, which is ours
        let mut t: libc::timespec = unsafe { std::mem::zeroed() };
        if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) } != 0 {
            return None;
        }
        let all = t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64;
        Some((host, all.max(host)))
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        // SAFETY: getrusage only writes the struct it is given, which is zeroed and ours
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
            return None;
        }
        let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
        let t = ns(u.ru_utime) + ns(u.ru_stime);
        Some((t, t))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_names_are_shortened_to_their_type() {
        assert_eq!(short_name("a::b::Elemwise<f32, x::Y>"), "Elemwise");
        assert_eq!(short_name("Plain"), "Plain");
    }

    #[test]
    fn host_time_grows_with_host_work() {
        let a = host_cpu_ns();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        if let (Some(a), Some(b)) = (a, host_cpu_ns()) {
            assert!(b.0 > a.0 && b.1 > a.1, "{a:?} → {b:?}");
            assert!(
                b.1 >= b.0,
                "the program's threads are some of the process's"
            );
        }
    }
}
