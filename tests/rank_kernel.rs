//! The reward-model ranking-loss kernel (`shaders/ranking_loss.wgsl`) against its reference twin
//! in burn ops: loss values and gradients, ragged K, large reward gaps, a hand-computed case, the
//! kernel path really taken on wgpu, gradients reaching parameters through it, and the CPU path.

mod common;

use burn::module::Module;
use burn::nn::LinearConfig;
use burn::prelude::*;
use rlhf::kernels::ranking_loss::wgsl_launches;
use rlhf::kernels::{ranking_loss, ranking_loss_reference};
use rlhf::util::rng::Rng;
use rlhf::util::tensors::{floats, to_vec};

/// The launch counters are process wide and this file is one process whose tests run on
/// parallel threads: every test here that launches kernels holds this lock for its whole run,
/// so a count read in one test is that test's own launches (exactly, not "at least").
static KERNEL_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    // a failed test leaves nothing behind that the next one depends on
    KERNEL_TESTS.lock().unwrap_or_else(|e| e.into_inner())
}

type LossFn = fn(Tensor<1>, &[usize]) -> anyhow::Result<Tensor<1>>;

/// Loss and dL/dr of `f` on `rewards` (N,), computed on `device` with autodiff.
fn loss_and_grad(f: LossFn, rewards: &[f32], ks: &[usize], device: &Device) -> (f32, Vec<f32>) {
    let dev = device.clone().autodiff();
    let r = floats(rewards, [rewards.len()], &dev).require_grad();
    let loss = f(r.clone(), ks).unwrap();
    assert_eq!(loss.dims(), [1]);
    let value = to_vec(loss.clone()).unwrap()[0];
    let grads = loss.backward();
    let g = to_vec(r.grad(&grads).expect("no gradient for the rewards")).unwrap();
    (value, g)
}

/// Rewards uniform in [-40, 40], so gaps within a prompt reach ±80.
fn random_rewards(n: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.next_f64() * 80.0 - 40.0) as f32)
        .collect()
}

/// The batches the kernel is checked on: each K from 2 to 9 alone, a ragged mix of all of them,
/// and hand-made extremes (gaps of exactly ±80, ties, a 9-way ranking in reverse order).
fn cases() -> Vec<(Vec<usize>, Vec<f32>)> {
    let mut rng = Rng::new(7);
    let mut out = vec![];
    for k in 2..=9 {
        let ks = vec![k; 5];
        let r = random_rewards(5 * k, &mut rng);
        out.push((ks, r));
    }
    let mut ks: Vec<usize> = (2..=9).chain(2..=9).collect();
    rng.shuffle(&mut ks);
    let r = random_rewards(ks.iter().sum(), &mut rng);
    out.push((ks, r));
    let extremes = vec![
        40.0, -40.0, // K=2, gap +80
        -40.0, 40.0, // K=2, gap -80
        1.0, 1.0, 1.0, // K=3, all tied
        -40.0, -30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0, 40.0, // K=9, worst first
    ];
    out.push((vec![2, 2, 3, 9], extremes));
    out
}

fn assert_close(what: &str, a: f32, b: f32, tol: f32) {
    let err = (a - b).abs() / a.abs().max(b.abs()).max(1.0);
    assert!(err <= tol, "{what}: {a} vs {b} (relative error {err:e})");
}

fn assert_finite(what: &str, xs: &[f32]) {
    assert!(
        xs.iter().all(|x| x.is_finite()),
        "{what}: non-finite value in {xs:?}"
    );
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn kernel_matches_reference_on_wgpu() {
    let _serial = one_at_a_time();
    let dev = common::wgpu_device();
    for (ks, r) in cases() {
        let (lk, gk) = loss_and_grad(ranking_loss, &r, &ks, &dev);
        let (lr, gr) = loss_and_grad(ranking_loss_reference, &r, &ks, &dev);
        assert_finite("kernel grad", &gk);
        assert_finite("reference grad", &gr);
        assert!(
            lk.is_finite() && lr.is_finite(),
            "ks {ks:?}: loss {lk} / {lr}"
        );
        assert!(lk > 0.0, "ks {ks:?}: a ranking loss is positive, got {lk}");
        assert_close(&format!("loss, ks {ks:?}"), lk, lr, 1e-5);
        let d = common::max_rel_diff(&gk, &gr);
        assert!(
            d <= 1e-5,
            "ks {ks:?}: gradients differ by {d:e}\n{gk:?}\n{gr:?}"
        );
        // Per prompt the gradient sums to zero (shifting all of a prompt's rewards is free).
        let mut start = 0;
        for &k in &ks {
            let s: f32 = gk[start..start + k].iter().sum();
            assert!(s.abs() < 1e-6, "ks {ks:?}: prompt gradient sums to {s}");
            start += k;
        }
    }
}

/// One prompt with K = 3 and rewards [2, 1, 0] (already in the right order), one with K = 2 and
/// rewards [0, 1] (the worse response scores higher). With softplus(x) = log(1 + e^x):
///
///   prompt 1: pairs (2,1), (2,0), (1,0) → margins 1, 2, 1
///             (softplus(-1) + softplus(-2) + softplus(-1)) / 3
///             = (0.31326169 + 0.12692801 + 0.31326169) / 3 = 0.25115046
///   prompt 2: margin 0 - 1 = -1 → softplus(1) = 1.31326169
///   L = (0.25115046 + 1.31326169) / 2 = 0.78220607
///
/// dL/dr (σ = sigmoid; prompt 1 scaled by 1/(2·3), prompt 2 by 1/(2·1)):
///   prompt 1: [-(σ(-1)+σ(-2))/6, (σ(-1)-σ(-1))/6, (σ(-2)+σ(-1))/6] = [-0.06469072, 0, 0.06469072]
///   prompt 2: [-σ(1)/2, σ(1)/2] = [-0.36552929, 0.36552929]
///
/// Cross-check:
/// python3 -c "import math;sp=lambda x:math.log1p(math.exp(x));
///   print(((2*sp(-1)+sp(-2))/3+sp(1))/2)"
/// → 0.7822060747723478
#[test]
fn hand_computed_small_case() {
    check_hand_computed(vec![
        ("cpu kernel-path", ranking_loss as LossFn, Device::flex()),
        ("cpu reference", ranking_loss_reference, Device::flex()),
    ]);
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn hand_computed_small_case_on_wgpu() {
    let _serial = one_at_a_time();
    let dev = common::wgpu_device();
    check_hand_computed(vec![
        ("wgpu kernel", ranking_loss as LossFn, dev.clone()),
        ("wgpu reference", ranking_loss_reference, dev),
    ]);
}

fn check_hand_computed(runs: Vec<(&str, LossFn, Device)>) {
    let r = [2.0, 1.0, 0.0, 0.0, 1.0];
    let ks = [3, 2];
    let want_g = [-0.06469072, 0.0, 0.06469072, -0.365_529_3, 0.365_529_3];
    for (name, f, dev) in runs {
        let (l, g) = loss_and_grad(f, &r, &ks, &dev);
        assert_close(name, l, 0.78220607, 1e-6);
        for (a, b) in g.iter().zip(want_g) {
            assert!((a - b).abs() < 1e-6, "{name}: grad {g:?} vs {want_g:?}");
        }
    }
}

/// Rewards from a Linear layer on an autodiff wgpu device: the kernel launches, and the weight
/// and bias gradients through it equal those through the reference twin.
#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn kernel_path_runs_and_gradients_reach_parameters() {
    let _serial = one_at_a_time();
    let dev = common::wgpu_device();
    let dev = dev.autodiff();
    let ks = [4usize, 9, 2, 7, 3];
    let n: usize = ks.iter().sum();
    let d = 8;
    let linear = LinearConfig::new(d, 1).init(&dev);
    let mut rng = Rng::new(3);
    let x: Vec<f32> = (0..n * d)
        .map(|_| (rng.next_f64() * 4.0 - 2.0) as f32)
        .collect();
    let x = floats(&x, [n, d], &dev);

    let grads_of = |f: LossFn| {
        let rewards = linear.forward(x.clone()).reshape([n]); // (N,)
        let loss = f(rewards, &ks).unwrap();
        let grads = loss.backward();
        let w = to_vec(linear.weight.grad(&grads).expect("no weight grad")).unwrap();
        let b = linear
            .bias
            .as_ref()
            .expect("bias")
            .grad(&grads)
            .expect("no bias grad");
        (w, to_vec(b).unwrap())
    };
    let before = wgsl_launches();
    let (wk, bk) = grads_of(ranking_loss);
    assert_eq!(wgsl_launches() - before, 1, "one WGSL kernel launch");
    let (wr, br) = grads_of(ranking_loss_reference);
    assert_finite("weight grad", &wk);
    assert!(
        wk.iter().any(|v| v.abs() > 1e-4),
        "weight grad is ~0: {wk:?}"
    );
    let dw = common::max_rel_diff(&wk, &wr);
    assert!(
        dw <= 1e-5,
        "weight grads differ by {dw:e}: {wk:?} vs {wr:?}"
    );
    // The bias shifts every reward equally, which the loss ignores: its gradient is ~0 both ways.
    assert!(
        bk[0].abs() < 1e-6 && br[0].abs() < 1e-6,
        "bias grads {bk:?} {br:?}"
    );
    assert_eq!(linear.num_params(), d + 1);
}

/// The backward step multiplies the kernel's dL/dr by the upstream gradient: for 2.5·L the
/// reward gradients are 2.5 times the reference's dL/dr.
#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn backward_scales_with_upstream_gradient() {
    let _serial = one_at_a_time();
    let dev = common::wgpu_device();
    let (ks, r) = cases().swap_remove(3);
    let scaled: LossFn = |r, ks| Ok(ranking_loss(r, ks)?.mul_scalar(2.5));
    let (l, g) = loss_and_grad(scaled, &r, &ks, &dev);
    let (lr, gr) = loss_and_grad(ranking_loss_reference, &r, &ks, &dev);
    assert_close("scaled loss", l, 2.5 * lr, 1e-5);
    let want: Vec<f32> = gr.iter().map(|x| 2.5 * x).collect();
    let d = common::max_rel_diff(&g, &want);
    assert!(d <= 1e-5, "gradients differ by {d:e}: {g:?} vs {want:?}");
}

/// Without autodiff the kernel runs too (the forward alone) and agrees with the reference.
#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn kernel_without_autodiff_matches_reference() {
    let _serial = one_at_a_time();
    let dev = common::wgpu_device();
    let (ks, r) = cases().pop().expect("cases");
    let before = wgsl_launches();
    let lk = to_vec(ranking_loss(floats(&r, [r.len()], &dev), &ks).unwrap()).unwrap()[0];
    assert_eq!(wgsl_launches() - before, 1, "one WGSL kernel launch");
    let lr = to_vec(ranking_loss_reference(floats(&r, [r.len()], &dev), &ks).unwrap()).unwrap()[0];
    assert_close("loss without autodiff", lk, lr, 1e-5);
}

/// The loss and dL/dr written out from the definition, in f64, for the CPU path to be checked
/// against something other than itself: responses best first, each prompt the mean over its
/// C(K,2) pairs (i, j), i < j, of softplus(r_j − r_i), then the mean over prompts.
fn definition_f64(r: &[f32], ks: &[usize]) -> (f64, Vec<f64>) {
    let softplus = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let (mut loss, mut grad, mut at) = (0.0, vec![0.0; r.len()], 0);
    let p = ks.len() as f64;
    for &k in ks {
        let w = 1.0 / (p * (k * (k - 1) / 2) as f64);
        for i in at..at + k {
            for j in i + 1..at + k {
                let x = r[j] as f64 - r[i] as f64;
                loss += w * softplus(x);
                grad[i] -= w * sigmoid(x);
                grad[j] += w * sigmoid(x);
            }
        }
        at += k;
    }
    (loss, grad)
}

/// On the CPU (Flex) `ranking_loss` launches no kernel and runs the reference twin in burn ops:
/// its loss and gradient agree with [`definition_f64`] on every case, gaps of ±80 included
/// (where softplus written naively in f32 overflows).
#[test]
fn cpu_path_matches_the_definition() {
    let _serial = one_at_a_time();
    let cpu = Device::flex();
    for (ks, r) in cases() {
        let before = wgsl_launches();
        let (l, g) = loss_and_grad(ranking_loss, &r, &ks, &cpu);
        assert_eq!(wgsl_launches(), before, "no kernel on the CPU");
        let (ld, gd) = definition_f64(&r, &ks);
        assert_close(&format!("cpu loss, ks {ks:?}"), l, ld as f32, 1e-5);
        let gd: Vec<f32> = gd.iter().map(|&x| x as f32).collect();
        let d = common::max_rel_diff(&gd, &g);
        assert!(d <= 1e-5, "ks {ks:?}: gradient off the definition by {d:e}");
    }
}

/// The wgpu kernel agrees with the CPU path.
#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn wgpu_kernel_equals_the_cpu_path() {
    let _serial = one_at_a_time();
    let (cpu, dev) = (Device::flex(), common::wgpu_device());
    for (ks, r) in cases() {
        let (l, g) = loss_and_grad(ranking_loss, &r, &ks, &cpu);
        let (lk, gk) = loss_and_grad(ranking_loss, &r, &ks, &dev);
        assert_close(&format!("cpu vs wgpu kernel, ks {ks:?}"), l, lk, 1e-5);
        let d = common::max_rel_diff(&g, &gk);
        assert!(
            d <= 1e-5,
            "ks {ks:?}: cpu vs kernel gradients differ by {d:e}"
        );
    }
}

#[test]
fn rejects_bad_rankings() {
    let dev = Device::flex();
    let r = |n: usize| floats(&vec![0.0; n], [n], &dev);
    let err = |n: usize, ks: &[usize]| format!("{:#}", ranking_loss(r(n), ks).unwrap_err());
    assert!(err(5, &[3, 3]).contains("sum to 6 but there are 5"));
    assert!(err(4, &[1, 3]).contains("K = 1"));
    assert!(err(10, &[10]).contains("K = 10"));
    assert!(err(0, &[]).contains("no prompts"));
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn rejects_bad_rankings_on_wgpu() {
    let _serial = one_at_a_time();
    let dev = common::wgpu_device();
    let e = ranking_loss(floats(&[0.0; 3], [3], &dev), &[2, 2]).unwrap_err();
    assert!(
        format!("{e:#}").contains("sum to 4 but there are 3"),
        "{e:#}"
    );
}
