//! Tells the tests whether this machine should have a wgpu adapter, so that a wgpu test that
//! cannot run is reported as ignored in the test summary (`cfg(no_wgpu_adapter)`, see
//! `tests/common/mod.rs`) instead of passing without having run.
//!
//! Why a guess from files, not wgpu itself: asking wgpu here would build all of wgpu a second
//! time as a build dependency. macOS always has Metal and Windows DX12 (WARP at least); on other
//! systems a Vulkan adapter needs an installed driver manifest (an ICD file, e.g. Mesa's
//! lavapipe from `mesa-vulkan-drivers`). Where the guess says yes but wgpu finds no adapter at
//! run time, the wgpu tests fail with wgpu's reason: a driver that is installed but does not
//! work is worth a failure, not a silent pass.
//!
//! Likewise `cfg(no_smollm2)`: set when `RLHF_SMOLLM2_GGUF` names no file (the SmolLM2 GGUF the
//! tests in `tests/gguf/smollm2.rs` read) and `CI` is unset; under CI those tests always run,
//! and fail if `.ci/run` did not fetch the file.

use std::path::Path;

const ICD_DIRS: [&str; 4] = [
    "/usr/share/vulkan/icd.d",
    "/usr/local/share/vulkan/icd.d",
    "/etc/vulkan/icd.d",
    "/run/opengl-driver/share/vulkan/icd.d",
];

fn has_vulkan_driver() -> bool {
    let env_set = ["VK_ICD_FILENAMES", "VK_DRIVER_FILES"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    env_set
        || ICD_DIRS.iter().any(|d| {
            std::fs::read_dir(Path::new(d)).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
        })
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_wgpu_adapter)");
    println!("cargo::rerun-if-env-changed=VK_ICD_FILENAMES");
    println!("cargo::rerun-if-env-changed=VK_DRIVER_FILES");
    println!("cargo::rerun-if-env-changed=CI");
    for d in ICD_DIRS {
        // a driver installed after the build (apt-get install mesa-vulkan-drivers) reruns this
        if Path::new(d).exists() {
            println!("cargo::rerun-if-changed={d}");
        }
    }
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    // under CI (`.ci/run` exports it) the wgpu tests must run: none is ever ignored there
    let ci = std::env::var_os("CI").is_some();
    let expected = ci || matches!(os.as_str(), "macos" | "ios" | "windows") || has_vulkan_driver();
    if !expected {
        println!("cargo::rustc-cfg=no_wgpu_adapter");
    }
    smollm2(ci);
}

/// `cfg(no_smollm2)` unless `RLHF_SMOLLM2_GGUF` names a file or this is CI.
fn smollm2(ci: bool) {
    println!("cargo::rustc-check-cfg=cfg(no_smollm2)");
    println!("cargo::rerun-if-env-changed=RLHF_SMOLLM2_GGUF");
    let file = std::env::var_os("RLHF_SMOLLM2_GGUF").filter(|p| Path::new(p).is_file());
    if let Some(p) = &file {
        // a file removed after the build reruns this (watching a missing path would rerun it
        // at every build)
        println!("cargo::rerun-if-changed={}", Path::new(p).display());
    }
    if file.is_none() && !ci {
        println!("cargo::rustc-cfg=no_smollm2");
    }
}
