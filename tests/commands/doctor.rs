//! `rlhf doctor` through the binary: on lavapipe every check runs and passes (the fused kernels
//! against their twins, a training step against the CPU backend), and on the CPU backend it
//! says the kernels are not used and still checks the training step; with a kernel broken on
//! purpose it exits 1 and a GPU pipeline refuses to train. Beside it, `rlhf kernels
//! --compile-times`, the driver's compile time per kernel variant.

use crate::common;
use crate::fixtures;

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

/// `rlhf kernels --compile-times` opens the adapter as every command does, compiles and runs the
/// chosen variants and prints one time per variant, then the total; `--only` picks by name.
/// The attention kernel broken on purpose (`RLHF_BREAK_KERNEL=attention`: its output scaled by
/// 1.001): `doctor` marks each attention check FAIL and exits 1, and a GPU run of the pipeline
/// stops before training with a message naming the failed checks.
#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn a_broken_kernel_fails_doctor_and_stops_a_gpu_pipeline() {
    common::wgpu_device();
    let broken = ::rlhf::kernels::attention::BREAK_KERNEL_ENV;
    let o = rlhf()
        .args(["doctor", "--device", "wgpu"])
        .env(broken, "attention")
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        failed.iter().filter(|l| l.contains("attention")).count() == 4,
        "each attention check fails:\n{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("ok ") && l.contains("ranking loss")),
        "{out}"
    );
    assert!(!out.contains("verdict: ok"), "{out}");
    assert!(err.contains("some checks failed"), "{err}");
    let d = common::tmp_dir("broken-kernel");
    let o = rlhf()
        .args(["pipeline", "--preset", "tiny", "--device", "wgpu", "--out"])
        .arg(&d)
        .env(broken, "attention")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("computes the fused kernels wrongly") && err.contains("attention fwd+bwd"),
        "{err}"
    );
    assert!(!d.join("pretrain").exists(), "nothing is trained");
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn kernels_compile_times_lists_each_chosen_variant() {
    common::wgpu_device();
    let o = rlhf()
        .args(["kernels", "--compile-times", "--device", "wgpu"])
        .args(["--only", "ranking_loss", "dropout"])
        .output()
        .unwrap();
    ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("adapter: ") && out.contains("driver: "),
        "{out}"
    );
    let timed: Vec<&str> = out.lines().filter(|l| l.contains(" s  ")).collect();
    assert_eq!(timed.len(), 2, "one line per chosen variant:\n{out}");
    for (line, name) in timed.iter().zip(["ranking_loss_wg", "dropout_wg"]) {
        assert!(line.contains(name), "{name} expected in '{line}'");
        let secs: f64 = line.split_whitespace().next().unwrap().parse().unwrap();
        assert!(secs > 0.0 && secs < 60.0, "{line}");
    }
    assert!(out.contains("2 variants in "), "{out}");
    let none = rlhf()
        .args(["kernels", "--compile-times", "--only", "no_such_kernel"])
        .output()
        .unwrap();
    assert!(!none.status.success());
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(err.contains("no variant's name contains"), "{err}");
}
