//! Fused attention (the WGSL kernels on wgpu, the CPU kernel on the CPU backend) vs its reference
//! twin (`attention_reference`) on the same device: outputs and
//! dQ, dK, dV for several shapes, KV-cache decode (t_past > 0, and a model decode step), left and
//! right padding, the GPU and CPU work-size plans, a full training step of the tiny GPT, and proof
//! (launch counter) that the model takes the kernel path. Grouped-query attention (fewer key/value
//! heads than query heads, the Llama family's) is in `attention_kernel/gqa.rs`, attention over
//! c_attn's fused output in `attention_kernel/fused_qkv.rs`.

mod common;
#[path = "attention_kernel/fused_qkv.rs"]
mod fused_qkv;
#[path = "attention_kernel/gqa.rs"]
mod gqa;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use rlhf::config::ModelConfig;
use rlhf::kernels::attention::plan::{plan, set_plan_override, AttnPlan};
use rlhf::kernels::attention::{self, attention_reference, causal_attention};
use rlhf::kernels::set_kernels_disabled;
use rlhf::model::generate::Decoder;
use rlhf::model::gpt::positions;
use rlhf::model::loss::masked_nll;
use rlhf::model::{InitRng, Lm};
use rlhf::util::rng::Rng;
use rlhf::util::tensors::{floats, ints, to_vec};

/// The launch counters and the kernel switch are process wide and this file is one process whose
/// tests run on parallel threads: every test here that launches kernels holds this lock for its
/// whole run, so a count read in one test is that test's own launches (exactly, not "at least"),
/// and the kernels one test turns off stay on for the others.
static KERNEL_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    // a failed test leaves nothing behind that the next one depends on
    KERNEL_TESTS.lock().unwrap_or_else(|e| e.into_inner())
}

const TOL: f32 = 1e-4;

/// Fused attention kernels run so far on `dev`'s kind: WGSL launches on wgpu, the CPU kernel's
/// calls on the CPU backend.
fn launches(dev: &Device) -> usize {
    if rlhf::kernels::is_kernel_device(dev) {
        attention::wgsl_launches()
    } else {
        attention::cpu_launches()
    }
}

fn randn(n: usize, seed: u64) -> Vec<f32> {
    common::randn(n, seed, 1.7)
}

/// One attention problem: shape, t_past, padding (per sequence, true at padding keys).
struct Case {
    b: usize,
    nh: usize,
    /// key/value heads (nh: plain multi-head attention)
    nkv: usize,
    t: usize,
    hs: usize,
    t_past: usize,
    pad: Option<Vec<bool>>,
}

impl Case {
    fn tk(&self) -> usize {
        self.t_past + self.t
    }
}

/// (O, dQ, dK, dV) of `loss = Σ O ∘ W` through the kernel path, or through the reference.
fn run(c: &Case, dev: &Device, reference: bool) -> [Vec<f32>; 4] {
    let ad = dev.clone().autodiff();
    let (tk, sq, skv) = (c.tk(), [c.b, c.nh, c.t, c.hs], [c.b, c.nkv, c.tk(), c.hs]);
    let q = floats(&randn(sq.iter().product(), 1), sq, &ad).require_grad();
    let k = floats(&randn(skv.iter().product(), 2), skv, &ad).require_grad();
    let v = floats(&randn(skv.iter().product(), 3), skv, &ad).require_grad();
    let w = floats(&randn(sq.iter().product(), 4), sq, &ad);
    let pad = c
        .pad
        .as_ref()
        .map(|p| Tensor::<2, Bool>::from_data(TensorData::new(p.clone(), [c.b, tk]), &ad));
    let o = if reference {
        attention_reference(q.clone(), k.clone(), v.clone(), pad, c.t_past)
    } else {
        let before = launches(dev);
        let o = causal_attention(q.clone(), k.clone(), v.clone(), pad, c.t_past);
        let _ = to_vec(o.clone()).unwrap();
        assert_eq!(
            launches(dev) - before,
            1,
            "one forward kernel: kernel path not taken"
        );
        o
    };
    let g = (o.clone() * w).sum().backward();
    [
        to_vec(o).unwrap(),
        to_vec(q.grad(&g).unwrap()).unwrap(),
        to_vec(k.grad(&g).unwrap()).unwrap(),
        to_vec(v.grad(&g).unwrap()).unwrap(),
    ]
}

fn check(c: &Case, dev: &Device) {
    let got = run(c, dev, false);
    let want = run(c, dev, true);
    for (name, (a, b)) in ["O", "dQ", "dK", "dV"]
        .iter()
        .zip(got.iter().zip(want.iter()))
    {
        assert!(a.iter().all(|x| x.is_finite()), "{name}: non-finite values");
        // with a single key (T = 1, no cache) softmax is constant: dQ = dK = 0 exactly
        // with a single key (T = 1, no cache) softmax is constant: dQ = dK = 0 up to rounding
        if c.tk() == 1 && (*name == "dQ" || *name == "dK") {
            let worst = rlhf::util::compare::worst(a.iter().chain(b).map(|x| x.abs()));
            assert!(worst <= 1e-5, "{name} should be ~0 with one key: {worst}");
            continue;
        }
        assert!(
            b.iter().any(|x| x.abs() > 1e-3),
            "{name}: reference ~0, vacuous"
        );
        let rel = common::max_rel_diff(a, b);
        assert!(
            rel <= TOL,
            "{name} differs for B{} nh{} nkv{} T{} hs{} t_past{}: max rel {rel}",
            c.b,
            c.nh,
            c.nkv,
            c.t,
            c.hs,
            c.t_past
        );
    }
}

fn case(b: usize, nh: usize, t: usize, hs: usize) -> Case {
    Case {
        b,
        nh,
        nkv: nh,
        t,
        hs,
        t_past: 0,
        pad: None,
    }
}

fn outputs_and_grads_match_reference_across_shapes_on(dev: &Device) {
    let _serial = one_at_a_time();
    for c in [
        case(2, 2, 1, 16),
        case(2, 2, 67, 16),
        case(1, 2, 67, 32),
        case(1, 2, 256, 64),
        case(1, 1, 45, 128),
    ] {
        check(&c, dev);
    }
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn outputs_and_grads_match_reference_across_shapes() {
    outputs_and_grads_match_reference_across_shapes_on(&common::wgpu_device());
}

#[test]
fn outputs_and_grads_match_reference_across_shapes_on_the_cpu() {
    outputs_and_grads_match_reference_across_shapes_on(&Device::flex());
    // the CPU kernel takes any head size, not only multiples of 4 (under the lock: it counts)
    let _serial = one_at_a_time();
    check(&case(2, 3, 19, 6), &Device::flex());
}

/// Work sizes: CPU adapters get 8-wide workgroups with many rows per invocation, GPUs one row per
/// thread; the tile shrinks with the workgroup memory (lavapipe and most GPUs: 32 KiB).
#[test]
fn plan_depends_on_adapter_type_and_limits() {
    let kib32 = 32 * 1024;
    let gpu = |tile| AttnPlan {
        wg: tile,
        rows: 1,
        tile,
    };
    assert_eq!(plan(32, kib32, 1024, false), gpu(64));
    assert_eq!(plan(64, kib32, 1024, false), gpu(32));
    assert_eq!(plan(128, kib32, 1024, false), gpu(16));
    assert_eq!(plan(64, 64 * 1024, 1024, false), gpu(64));
    assert_eq!(plan(64, 64 * 1024, 256, false).block(), 64);
    let cpu = plan(32, kib32, 1024, true);
    assert_eq!((cpu.wg, cpu.rows, cpu.tile), (8, 16, 64));
    assert_eq!(cpu.block(), 128);
    let cpu = plan(64, kib32, 1024, true);
    assert_eq!((cpu.wg, cpu.rows, cpu.tile), (8, 8, 32));
    let cpu = plan(128, kib32, 1024, true);
    assert_eq!((cpu.wg, cpu.rows, cpu.tile), (8, 4, 16));
    assert_eq!(plan(16, kib32, 1024, true).rows, 16);
}

/// Both plans (GPU: one row per thread; CPU: 8 invocations × R rows) on this adapter, whatever
/// its type, against the reference: shapes with T not a multiple of any block, padding, decode.
#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn gpu_and_cpu_plans_match_reference() {
    let _serial = one_at_a_time();
    let dev = common::wgpu_device();
    let mut pad = vec![false; 2 * 40];
    pad[..7].fill(true);
    pad[2 * 40 - 9..].fill(true);
    for hs in [16, 64, 128] {
        for cpu in [false, true] {
            set_plan_override(Some(plan(hs, 32 * 1024, 1024, cpu)));
            check(&case(1, 2, 67, hs), &dev);
            check(
                &Case {
                    pad: Some(pad.clone()),
                    ..case(2, 1, 40, hs)
                },
                &dev,
            );
            check(
                &Case {
                    t_past: 20,
                    ..case(2, 1, 1, hs)
                },
                &dev,
            );
        }
    }
    set_plan_override(None);
}

fn decode_with_t_past_matches_reference_on(dev: &Device) {
    let _serial = one_at_a_time();
    // one new query against 20 cached keys, and a 5-token chunk after 70 cached ones
    check(
        &Case {
            t_past: 20,
            ..case(2, 2, 1, 32)
        },
        dev,
    );
    check(
        &Case {
            t_past: 70,
            ..case(1, 2, 5, 16)
        },
        dev,
    );
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn decode_with_t_past_matches_reference() {
    decode_with_t_past_matches_reference_on(&common::wgpu_device());
}

#[test]
fn decode_with_t_past_matches_reference_on_the_cpu() {
    decode_with_t_past_matches_reference_on(&Device::flex());
}

fn left_and_right_padding_match_reference_on(dev: &Device) {
    let _serial = one_at_a_time();
    let (t, b) = (40, 2);
    // row 0 left-padded by 7 (its first 7 queries see only padding), row 1 right-padded by 9
    let mut pad = vec![false; b * t];
    pad[..7].fill(true);
    pad[2 * t - 9..].fill(true);
    check(
        &Case {
            pad: Some(pad.clone()),
            ..case(b, 2, t, 16)
        },
        dev,
    );
    // prompt prefix left-padded by 3 in the cache, decoding one token
    let mut pad = vec![false; b * 13];
    pad[..3].fill(true);
    check(
        &Case {
            t_past: 12,
            pad: Some(pad),
            ..case(b, 2, 1, 32)
        },
        dev,
    );
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn left_and_right_padding_match_reference() {
    left_and_right_padding_match_reference_on(&common::wgpu_device());
}

#[test]
fn left_and_right_padding_match_reference_on_the_cpu() {
    left_and_right_padding_match_reference_on(&Device::flex());
}

/// Loss and every parameter gradient of one step of the model `cfg` (tiny GPT unless a test
/// gives another), kernel path vs the kernels turned off (every op its reference twin).
fn training_step_matches_reference_on(dev: &Device, mut cfg: ModelConfig) {
    let _serial = one_at_a_time();
    let ad = dev.clone().autodiff();
    cfg.vocab_size = 120;
    let model = Lm::new(&cfg, &mut InitRng::new(0), &ad);
    let (b, t) = (2, 37);
    let mut r = Rng::new(9);
    let x: Vec<i64> = (0..b * t).map(|_| r.below(120) as i64).collect();
    let y: Vec<i64> = (0..b * t).map(|_| r.below(120) as i64).collect();
    // row 1 left-padded by 5: weights 0 there
    let mut w = vec![1.0f32; b * t];
    w[t..t + 5].fill(0.0);
    let mut pad = vec![false; b * t];
    pad[t..t + 5].fill(true);
    let step = |reference: bool| {
        set_kernels_disabled(reference);
        let keypad = Tensor::<2, Bool>::from_data(TensorData::new(pad.clone(), [b, t]), &ad);
        // the training path: the heads read straight out of c_attn's output
        let h = model.hidden(ints(&x, [b, t], &ad), positions(b, t, 0, &ad), Some(keypad));
        let loss = masked_nll(
            model.logits(h),
            ints(&y, [b, t], &ad),
            floats(&w, [b, t], &ad),
        );
        set_kernels_disabled(false);
        let lv = to_vec(loss.clone()).unwrap()[0];
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut all = Vec::new();
        model.visit(&mut GradCollector {
            grads: &grads,
            out: &mut all,
        });
        (lv, all)
    };
    let before = launches(dev);
    let (l_k, g_k) = step(false);
    // WGSL: forward, dK/dV and dQ kernels; CPU: one forward and one backward call
    let per_layer = if rlhf::kernels::is_kernel_device(dev) {
        3
    } else {
        2
    };
    assert_eq!(
        launches(dev) - before,
        per_layer * cfg.n_layer,
        "forward + backward kernels per layer expected"
    );
    let (l_r, g_r) = step(true);
    assert!((l_k - l_r).abs() <= 1e-5 * l_r.abs(), "loss {l_k} vs {l_r}");
    assert_eq!(g_k.len(), g_r.len());
    assert!(!g_k.is_empty());
    for (i, (a, b)) in g_k.iter().zip(&g_r).enumerate() {
        let rel = common::max_rel_diff(a, b);
        assert!(rel <= TOL, "parameter {i}: gradient max rel {rel}");
    }
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn tiny_gpt_training_step_matches_reference() {
    training_step_matches_reference_on(&common::wgpu_device(), tiny());
}

#[test]
fn tiny_gpt_training_step_matches_reference_on_the_cpu() {
    training_step_matches_reference_on(&Device::flex(), tiny());
}

/// The tiny preset (2 layers, 64 wide, 4 heads of 16).
fn tiny() -> ModelConfig {
    ModelConfig::preset("tiny").unwrap()
}

/// Collects every float parameter's gradient, in visiting order.
struct GradCollector<'a> {
    grads: &'a GradientsParams,
    out: &'a mut Vec<Vec<f32>>,
}

impl burn::module::ModuleVisitor for GradCollector<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.out.push(to_vec(g).unwrap());
        }
    }
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn model_takes_kernel_path_on_wgpu() {
    let _serial = one_at_a_time();
    let dev = common::wgpu_device();
    let mut cfg = ModelConfig::preset("tiny").unwrap();
    cfg.vocab_size = 50;
    let model = Lm::new(&cfg, &mut InitRng::new(0), &dev);
    let before = attention::wgsl_launches();
    let idx: Vec<i64> = (0..24).map(|i| i % 50).collect();
    let logits = to_vec(model.forward(ints(&idx, [2, 12], &dev))).unwrap();
    assert!(logits.iter().all(|v| v.is_finite()));
    assert_eq!(
        attention::wgsl_launches() - before,
        cfg.n_layer,
        "model forward on wgpu: one fused kernel per layer"
    );
}

/// KV-cache decoding: each step is one new query per row against the cached keys (t_past > 0,
/// left-padded prompts). The step takes the kernel path and gives the reference's logits.
fn kv_cache_decode_step_matches_reference_on(dev: &Device, mut cfg: ModelConfig) {
    let _serial = one_at_a_time();
    cfg.vocab_size = 50;
    let model = Lm::new(&cfg, &mut InitRng::new(0), dev);
    let prompts = vec![vec![1u32, 2, 3, 4, 5], vec![6, 7]];
    let decode = |reference: bool| {
        set_kernels_disabled(reference);
        let (mut dec, _) = Decoder::prefill(&model, &prompts, true, dev).unwrap();
        let before = launches(dev);
        let logits = dec.step(&[8, 9]).unwrap();
        let launched = launches(dev) - before;
        set_kernels_disabled(false);
        (logits.concat(), launched)
    };
    let (got, launched) = decode(false);
    assert!(
        launched == cfg.n_layer,
        "decode step launched {launched} attention kernels for {} layers",
        cfg.n_layer
    );
    let (want, _) = decode(true);
    let rel = common::max_rel_diff(&got, &want);
    assert!(rel <= TOL, "decode-step logits differ: max rel {rel}");
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn kv_cache_decode_step_takes_kernel_path_and_matches_reference() {
    kv_cache_decode_step_matches_reference_on(&common::wgpu_device(), tiny());
}

#[test]
fn kv_cache_decode_step_takes_kernel_path_and_matches_reference_on_the_cpu() {
    kv_cache_decode_step_matches_reference_on(&Device::flex(), tiny());
}
