//! `rlhf pipeline`: the whole job, from the tokenizer to the report, in one run directory.

use super::open;
use crate::cli::PipelineArgs;
use crate::pipeline;
use anyhow::Result;
use std::path::PathBuf;

/// `runs/<UTC timestamp>` (`runs/YYYYMMDD-HHMMSS`) for a new pipeline run.
pub fn default_run_dir() -> PathBuf {
    run_dir_at(time::OffsetDateTime::now_utc())
}

/// `runs/YYYYMMDD-HHMMSS` of the UTC time `t`.
fn run_dir_at(t: time::OffsetDateTime) -> PathBuf {
    let t = t.to_offset(time::UtcOffset::UTC);
    PathBuf::from("runs").join(format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// `rlhf pipeline`: the preset's job with the given flags (`PipelineArgs::config`).
pub(super) fn pipeline(a: PipelineArgs) -> Result<()> {
    let dev = open(a.device.device)?;
    // a software adapter (lavapipe) computes slower than the CPU backend: the CPU's size
    let hardware = dev
        .adapter
        .as_ref()
        .is_some_and(|a| a.device_type != wgpu::DeviceType::Cpu);
    let size = if hardware {
        pipeline::BaseSize::Gpu
    } else {
        pipeline::BaseSize::Cpu
    };
    let cfg = a.config(size)?;
    let out = a.out.unwrap_or_else(default_run_dir);
    if a.no_kernels {
        crate::kernels::set_kernels_disabled(true);
        eprintln!("kernels: off (--no-kernels): the composed reference ops run");
    } else if crate::kernels::is_kernel_device(&dev.device) {
        let n = crate::stages::doctor::require_kernels(&dev.device)?.len();
        eprintln!("kernels: {n} checks against the reference twins passed on this adapter");
    }
    pipeline::run(&cfg, &out, a.assets.as_deref(), &dev.device)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dir_is_the_utc_date_and_time() {
        // 1,700,000,000 s after the epoch is 2023-11-14 22:13:20 UTC (`date -u -d @1700000000`)
        let t = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(run_dir_at(t), PathBuf::from("runs/20231114-221320"));
        // the same instant seen from UTC+2 still names the UTC time
        let east = t.to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(run_dir_at(east), PathBuf::from("runs/20231114-221320"));
        // 951,782,400 s is 2000-02-29 00:00:00 UTC, a leap day of a century year
        let leap = time::OffsetDateTime::from_unix_timestamp(951_782_400).unwrap();
        assert_eq!(run_dir_at(leap), PathBuf::from("runs/20000229-000000"));
    }
}
