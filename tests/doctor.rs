//! `rlhf doctor` through the binary: on lavapipe every check runs and passes (the fused kernels
//! against their twins, a training step against the CPU backend), and on the CPU backend it
//! says the kernels are not used and still checks the training step.

mod common;
mod fixtures;

use fixtures::{ok, rlhf};

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn doctor_checks_the_kernels_and_a_training_step_on_wgpu() {
    common::wgpu_device(); // fails the test with wgpu's reason when there is no adapter
    let o = rlhf()
        .args(["doctor", "--device", "wgpu"])
        .output()
        .unwrap();
    ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!("{out}");
    for want in [
        "device: ",
        "driver: ",
        "limits: workgroup memory",
        "verdict: ok",
        "throughput",
    ] {
        assert!(out.contains(want), "no '{want}' in:\n{out}");
    }
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("FAIL"))
        .collect();
    let kernels = rows
        .iter()
        .filter(|l| l.contains("attention") || l.contains("ranking loss"))
        .count();
    assert_eq!(
        kernels, 5,
        "four attention shapes and the ranking loss:\n{out}"
    );
    assert_eq!(
        rows.iter().filter(|l| l.contains("training step")).count(),
        3,
        "{out}"
    );
    assert!(rows.iter().all(|l| l.starts_with("ok ")), "{out}");
}

#[test]
fn doctor_on_the_cpu_backend_checks_the_training_step_only() {
    let o = rlhf().args(["doctor", "--device", "cpu"]).output().unwrap();
    ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("fused kernels: not used on this device"),
        "{out}"
    );
    assert!(out.contains("verdict: ok"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}
