//! Shared test fixtures: a small tokenizer trained once per test binary, devices.
#![allow(dead_code)]

use burn::prelude::*;
use rlhf::data::tokenizer::{self, Tok};
use std::path::PathBuf;
use std::sync::OnceLock;

pub fn assets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets")
}

pub fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rlhf-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A 512-token BPE trained on the first 300 KB of Emma.
pub fn tok() -> Tok {
    static TOK: OnceLock<Tok> = OnceLock::new();
    TOK.get_or_init(|| {
        let text = std::fs::read_to_string(assets().join("austen/emma.txt")).unwrap();
        let cut: String = text.chars().take(300_000).collect();
        let d = tmp_dir("tok");
        let f = d.join("emma_head.txt");
        std::fs::write(&f, cut).unwrap();
        tokenizer::train(&[f], 512).unwrap()
    })
    .clone()
}

/// The wgpu device for tests, or None (skip) outside CI when no adapter exists. In CI
/// (`CI` set) a missing adapter is a failure: the wgpu tests must really run on lavapipe.
pub fn wgpu_device() -> Option<Device> {
    match rlhf::device::select(rlhf::device::DeviceChoice::Wgpu) {
        Ok(s) => Some(s.device),
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("CI is set but no wgpu adapter is available: {e:#}");
            }
            eprintln!("skipping wgpu part: {e:#}");
            None
        }
    }
}

/// Largest |a−b| over the elements, relative to the largest |a| (at least 1e-6): the scale-free
/// error the cross-device tests bound.
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / scale)
        .fold(0.0, f32::max)
}
