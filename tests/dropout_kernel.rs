//! The dropout kernel (`shaders/dropout.wgsl`: the mask drawn on the device from a counter-based
//! RNG) against its reference twin (the same mask drawn on the host): outputs and gradients equal
//! bit for bit on wgpu, for one and several micro-batches, deep stream offsets, odd sizes and a
//! grid taller than one dimension; the kernel really launched (exact counts); and a model's
//! training forward on wgpu dropping the same elements as on the CPU backend.

mod common;

use burn::prelude::*;
use rlhf::config::ModelConfig;
use rlhf::kernels::dropout::{self, dropout, dropout_reference, MaskKey, Segment};
use rlhf::model::dropout::seed_masks_rows;
use rlhf::model::{InitRng, Lm};
use rlhf::util::rng::Rng;
use rlhf::util::tensors::{floats, ints, to_vec};

/// The launch counter is process wide: tests here that launch hold this lock (exact counts).
static KERNEL_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    KERNEL_TESTS.lock().unwrap_or_else(|e| e.into_inner())
}

type DropFn = fn(Tensor<2>, &MaskKey) -> Tensor<2>;

/// y and dL/dx for L = Σ y·dy on `device`.
fn run(f: DropFn, key: &MaskKey, x: &[f32], dy: &[f32], device: &Device) -> (Vec<f32>, Vec<f32>) {
    let ad = device.clone().autodiff();
    let rows = key.segments.last().unwrap().row_end;
    let shape = [rows, key.per_row];
    let xt = floats(x, shape, &ad).require_grad();
    let y = f(xt.clone(), key);
    let g = (y.clone() * floats(dy, shape, &ad)).sum().backward();
    (to_vec(y).unwrap(), to_vec(xt.grad(&g).unwrap()).unwrap())
}

fn keys() -> Vec<MaskKey> {
    let seg = |row_end, width, seed, start| Segment {
        row_end,
        width,
        seed,
        start,
    };
    vec![
        // one micro-batch, an odd element count
        MaskKey {
            keep: 0.9,
            per_row: 7,
            segments: vec![seg(3, 7, 5, 0)],
        },
        // three micro-batches at stream offsets past 2^32 (the carry into the high word)
        MaskKey {
            keep: 0.5,
            per_row: 129,
            segments: vec![
                seg(2, 129, u64::MAX - 3, 0xFFFF_FFFF),
                // a micro-batch padded to fewer positions than the tensor holds
                seg(3, 100, 1, 1 << 40),
                seg(7, 129, 0xDEAD_BEEF_0BAD_F00D, 12),
            ],
        },
        // more workgroups than one grid dimension holds (65,535 × 256 elements)
        MaskKey {
            keep: 0.8,
            per_row: 256 * 1024,
            segments: vec![seg(40, 256 * 1024, 77, 3), seg(70, 256 * 1000, 78, 0)],
        },
    ]
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn kernel_equals_its_twin_bitwise_values_and_gradients() {
    let _one = one_at_a_time();
    let dev = common::wgpu_device();
    for (i, key) in keys().iter().enumerate() {
        let mut rng = Rng::new(i as u64);
        let n = key.len();
        let x: Vec<f32> = (0..n).map(|_| rng.next_f64() as f32 - 0.5).collect();
        let dy: Vec<f32> = (0..n).map(|_| rng.next_f64() as f32 + 0.5).collect();
        let before = dropout::wgsl_launches();
        let (y, dx) = run(dropout, key, &x, &dy, &dev);
        assert_eq!(
            dropout::wgsl_launches() - before,
            2,
            "case {i}: forward and backward each one launch"
        );
        let (y_ref, dx_ref) = run(dropout_reference, key, &x, &dy, &dev);
        let (y_cpu, dx_cpu) = run(dropout_reference, key, &x, &dy, &Device::flex());
        assert!(y == y_ref && y == y_cpu, "case {i}: outputs differ");
        assert!(dx == dx_ref && dx == dx_cpu, "case {i}: gradients differ");
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
        assert!(
            (kept - key.keep).abs() < 0.05 + 3.0 / (n as f64).sqrt(),
            "case {i}: kept {kept}, want {}",
            key.keep
        );
    }
}

/// The CPU kernel (the mask drawn element by element in one pass) against the twin (the whole
/// mask built on the host, then multiplied), both on the CPU backend: equal bit for bit.
#[test]
fn the_cpu_kernel_equals_its_twin_bitwise_values_and_gradients() {
    let _one = one_at_a_time();
    let dev = Device::flex();
    for (i, key) in keys().iter().enumerate() {
        let mut rng = Rng::new(i as u64);
        let n = key.len();
        let x: Vec<f32> = (0..n).map(|_| rng.next_f64() as f32 - 0.5).collect();
        let dy: Vec<f32> = (0..n).map(|_| rng.next_f64() as f32 + 0.5).collect();
        let (launches, calls) = (dropout::wgsl_launches(), dropout::cpu_launches());
        let (y, dx) = run(dropout, key, &x, &dy, &dev);
        assert_eq!(
            dropout::wgsl_launches(),
            launches,
            "no WGSL kernel on the CPU"
        );
        assert_eq!(
            dropout::cpu_launches() - calls,
            2,
            "case {i}: forward and backward"
        );
        let (y_ref, dx_ref) = run(dropout_reference, key, &x, &dy, &dev);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert!(bits(&y) == bits(&y_ref), "case {i}: outputs differ");
        assert!(bits(&dx) == bits(&dx_ref), "case {i}: gradients differ");
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
        assert!((kept - key.keep).abs() < 0.05 + 3.0 / (n as f64).sqrt());
    }
}

/// The hidden state after the embedding dropout and every block of a training forward, with
/// the masks of two micro-batches laid out in one pass (as a GPU step runs them).
fn training_forward(device: &Device) -> Vec<f32> {
    let mut cfg = ModelConfig::preset("tiny").unwrap();
    cfg.vocab_size = 97;
    cfg.dropout = 0.3;
    let ad = device.clone().autodiff();
    let model = Lm::new(&cfg, &mut InitRng::new(1), &ad).train();
    let mut rng = Rng::new(2);
    let (b, t) = (5, 16);
    let ids: Vec<i64> = (0..b * t).map(|_| rng.below(97) as i64).collect();
    seed_masks_rows(9, 3, &[2, 3]);
    to_vec(model.forward(ints(&ids, [b, t], &ad))).unwrap()
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn a_training_forward_drops_the_same_elements_on_both_devices() {
    let _one = one_at_a_time();
    let before = dropout::wgsl_launches();
    let gpu = training_forward(&common::wgpu_device());
    let launched = dropout::wgsl_launches() - before;
    let cpu = training_forward(&Device::flex());
    // tiny: 2 layers → embedding + 2 sites per block
    assert_eq!(launched, 5, "every dropout site ran the kernel");
    let err = common::max_rel_diff(&cpu, &gpu);
    assert!(
        err < 1e-4,
        "logits differ by {err} (relative): other masks?"
    );
}
