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

/// The wgpu device for tests. Every test that needs one is marked
/// `#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]`, so a
/// wgpu test never passes without having run:
/// - where the build found no graphics driver (`build.rs`: no Vulkan driver manifest on Linux;
///   macOS and Windows always have one), the test summary counts them as ignored. Install one
///   (`apt-get install mesa-vulkan-drivers` gives Mesa's software lavapipe) and rebuild
///   (`cargo clean -p rlhf` if the build had none of the driver directories to watch);
/// - where a driver is installed but wgpu opens no adapter, they fail with wgpu's reason.
pub fn wgpu_device() -> Device {
    match rlhf::device::select(rlhf::device::DeviceChoice::Wgpu) {
        Ok(s) => s.device,
        Err(e) => panic!("a graphics driver is installed but wgpu finds no adapter: {e:#}"),
    }
}

/// Roughly normal values (a sum of 4 uniforms) of scale `s`, the same for the same seed.
pub fn randn(n: usize, seed: u64, s: f32) -> Vec<f32> {
    let mut r = rlhf::util::rng::Rng::new(seed);
    (0..n)
        .map(|_| {
            (0..4)
                .map(|_| r.below(1 << 20) as f32 / (1 << 20) as f32 - 0.5)
                .sum::<f32>()
                * s
        })
        .collect()
}

/// Largest |a−b| over the elements, relative to the largest |a| (at least 1e-6): the scale-free
/// error the cross-device tests bound. NaN (so over every tolerance) when either side holds a
/// NaN or an infinity.
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    // `rel_err` scales by its second argument and is NaN for any non-finite element of either
    rlhf::util::compare::rel_err(b, a)
}

/// Saves `model` as a finished language-model checkpoint in `dir` with the tokenizer `tok`.
pub fn save_lm(
    dir: &std::path::Path,
    model: &rlhf::model::Lm,
    cfg: rlhf::config::ModelConfig,
    tok: &Tok,
) {
    use rlhf::checkpoint::{self, CheckpointConfig, CheckpointKind, SaveRequest, TrainState};
    checkpoint::save(SaveRequest {
        dir,
        model,
        config: &CheckpointConfig {
            kind: CheckpointKind::Lm,
            stage: "test".into(),
            model: cfg,
            reward_bias: None,
            reward_gain: None,
            lora: None,
        },
        tok,
        optim: None,
        state: &TrainState {
            step: 0,
            rng: rlhf::util::rng::Rng::new(0),
            finished: true,
            extra: serde_json::Value::Null,
        },
    })
    .unwrap();
}

/// A randomly initialised tiny checkpoint (a language model or a reward model) in `dir/ckpt`.
pub fn random_ckpt(
    dir: &std::path::Path,
    kind: rlhf::checkpoint::CheckpointKind,
    seed: u64,
) -> PathBuf {
    use rlhf::checkpoint::{self, CheckpointConfig, CheckpointKind, SaveRequest, TrainState};
    use rlhf::config::ModelConfig;
    use rlhf::model::{InitRng, Lm, RewardModel};
    let tok = tok();
    let mut cfg = ModelConfig::preset("tiny").unwrap();
    cfg.vocab_size = tok.vocab_size();
    let dev = Device::flex();
    let config = CheckpointConfig {
        kind,
        stage: "test".into(),
        model: cfg.clone(),
        reward_bias: (kind == CheckpointKind::Rm).then_some(0.25),
        reward_gain: None,
        lora: None,
    };
    let state = TrainState {
        step: 0,
        rng: rlhf::util::rng::Rng::new(0),
        finished: true,
        extra: serde_json::Value::Null,
    };
    // one call for either model type
    fn save<M: burn::module::Module>(
        dir: &std::path::Path,
        model: &M,
        config: &CheckpointConfig,
        tok: &Tok,
        state: &TrainState,
    ) -> PathBuf {
        checkpoint::save(SaveRequest {
            dir,
            model,
            config,
            tok,
            optim: None,
            state,
        })
        .unwrap()
    }
    let init = &mut InitRng::new(seed);
    if kind == CheckpointKind::Rm {
        save(
            dir,
            &RewardModel::new(&cfg, init, &dev),
            &config,
            &tok,
            &state,
        )
    } else {
        save(dir, &Lm::new(&cfg, init, &dev), &config, &tok, &state)
    }
}
