//! The CPU kernels (Flex implementations of the kernel extensions) against their reference twins
//! on the CPU backend: values and gradients, on contiguous and strided inputs, and proof (call
//! counters) that the model takes the kernel path. The LayerNorm and token log-probability
//! kernels also have WGSL twins: those against the reference on wgpu, the same way.

mod common;

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use rlhf::kernels::attention::causal_attention;
use rlhf::kernels::cpu::{avx2_allowed, set_scalar_only};
use rlhf::kernels::gelu::{self, gelu_new, gelu_reference};
use rlhf::kernels::layer_norm::{self, layer_norm, layer_norm_reference};
use rlhf::kernels::linear::{self, linear, linear_reference};
use rlhf::kernels::sum_squares::{self, sum_of_squares};
use rlhf::kernels::token_logprob::{self, token_logprobs, token_logprobs_reference};
use rlhf::util::rng::Rng;
use rlhf::util::tensors::{floats, ints, to_vec};

/// Every test here reads process-wide call counters: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

use common::randn;

fn cpu() -> Device {
    Device::flex()
}

/// Each output of a kernel (`got`, named) within 1e-5 (relative) of its twin's (`want`), and
/// none of the twin's all near 0 (a comparison of zeros would prove nothing).
fn assert_close(names: &[&str], got: &[Vec<f32>], want: &[Vec<f32>], shape: [usize; 3]) {
    assert_eq!((got.len(), want.len()), (names.len(), names.len()));
    for ((name, a), b) in names.iter().zip(got).zip(want) {
        let rel = common::max_rel_diff(a, b);
        assert!(rel <= 1e-5, "{name} for {shape:?}: max rel {rel}");
        assert!(
            b.iter().any(|v| v.abs() > 0.1),
            "{name} for {shape:?}: vacuous"
        );
    }
}

/// Value and input gradient of `Σ f(x) ∘ w` for x of `shape`, optionally through a transposed
/// (strided) view of x.
fn value_and_grad(
    f: &dyn Fn(Tensor<3>) -> Tensor<3>,
    shape: [usize; 3],
    strided: bool,
) -> (Vec<f32>, Vec<f32>) {
    let dev = Device::flex().autodiff();
    let n = shape.iter().product();
    let x = floats(&randn(n, 1, 4.0), shape, &dev).require_grad();
    let w = floats(&randn(n, 2, 1.0), shape, &dev);
    let y = if strided {
        f(x.clone().swap_dims(0, 1)).swap_dims(0, 1)
    } else {
        f(x.clone())
    };
    let g = (y.clone() * w).sum().backward();
    (to_vec(y).unwrap(), to_vec(x.grad(&g).unwrap()).unwrap())
}

#[test]
fn gelu_kernel_matches_its_twin_in_values_and_gradients() {
    let _serial = one_at_a_time();
    for (shape, strided) in [([3, 5, 7], false), ([4, 33, 129], false), ([6, 2, 5], true)] {
        let before = gelu::cpu_launches();
        let (y, g) = value_and_grad(&|x| gelu_new(x), shape, strided);
        assert_eq!(
            gelu::cpu_launches() - before,
            2,
            "forward + backward kernel"
        );
        let (yr, gr) = value_and_grad(&|x| gelu_reference(x), shape, strided);
        assert_close(&["values", "gradients"], &[y, g], &[yr, gr], shape);
    }
}

/// Value and logits gradient of `Σ token_logprobs ∘ w` for logits (B, T, V) and random targets.
fn logprob_value_and_grad(
    f: &dyn Fn(Tensor<3>, Tensor<2, Int>) -> Tensor<2>,
    [b, t, v]: [usize; 3],
    device: &Device,
) -> (Vec<f32>, Vec<f32>) {
    let dev = device.clone().autodiff();
    let logits = floats(&randn(b * t * v, 3, 6.0), [b, t, v], &dev).require_grad();
    let mut r = Rng::new(4);
    let ids: Vec<i64> = (0..b * t).map(|_| r.below(v) as i64).collect();
    let w = floats(&randn(b * t, 5, 1.0), [b, t], &dev);
    let lp = f(logits.clone(), ints(&ids, [b, t], &dev));
    let g = (lp.clone() * w).sum().backward();
    (
        to_vec(lp).unwrap(),
        to_vec(logits.grad(&g).unwrap()).unwrap(),
    )
}

#[test]
fn token_logprob_kernel_matches_its_twin_in_values_and_gradients() {
    let _serial = one_at_a_time();
    // vocabularies a multiple of the 8 lanes and not; more rows than one task's block
    for shape in [[2, 3, 8], [3, 7, 61], [4, 17, 1000]] {
        let before = token_logprob::cpu_launches();
        let (y, g) = logprob_value_and_grad(&|l, t| token_logprobs(l, t), shape, &cpu());
        assert_eq!(
            token_logprob::cpu_launches() - before,
            2,
            "forward + backward kernel"
        );
        let (yr, gr) =
            logprob_value_and_grad(&|l, t| token_logprobs_reference(l, t), shape, &cpu());
        assert_close(&["values", "gradients"], &[y, g], &[yr, gr], shape);
    }
}

/// Value and the gradients of x, weight and bias of `Σ layer_norm(x) ∘ w`.
fn layer_norm_value_and_grads(
    f: &dyn Fn(Tensor<3>, Tensor<1>, Tensor<1>) -> Tensor<3>,
    shape: [usize; 3],
    device: &Device,
) -> [Vec<f32>; 4] {
    let dev = device.clone().autodiff();
    let (n, c) = (shape.iter().product(), shape[2]);
    // rows with an offset and a scale of their own, as a residual stream has
    let x = floats(&randn(n, 6, 3.0), shape, &dev) + 0.7;
    let x = x.require_grad();
    let gamma = floats(&randn(c, 7, 1.0), [c], &dev)
        .add_scalar(1.0)
        .require_grad();
    let beta = floats(&randn(c, 8, 1.0), [c], &dev).require_grad();
    let w = floats(&randn(n, 9, 1.0), shape, &dev);
    let y = f(x.clone(), gamma.clone(), beta.clone());
    let g = (y.clone() * w).sum().backward();
    [
        to_vec(y).unwrap(),
        to_vec(x.grad(&g).unwrap()).unwrap(),
        to_vec(gamma.grad(&g).unwrap()).unwrap(),
        to_vec(beta.grad(&g).unwrap()).unwrap(),
    ]
}

#[test]
fn layer_norm_kernel_matches_its_twin_in_values_and_gradients() {
    let _serial = one_at_a_time();
    // widths a multiple of the 8 lanes and not; more rows than one task's block of 64
    for shape in [[2, 3, 8], [3, 7, 61], [4, 33, 128]] {
        let before = layer_norm::cpu_launches();
        let got = layer_norm_value_and_grads(&|x, w, b| layer_norm(x, w, b, 1e-5), shape, &cpu());
        assert_eq!(
            layer_norm::cpu_launches() - before,
            2,
            "forward + backward kernel"
        );
        let want = layer_norm_value_and_grads(
            &|x, w, b| layer_norm_reference(x, w, b, 1e-5),
            shape,
            &cpu(),
        );
        assert_close(&["y", "dx", "dweight", "dbias"], &got, &want, shape);
    }
}

/// The WGSL kernels against the reference twin on wgpu, within 1e-5 as on the CPU; each forward
/// and backward launched its kernel once (the launch counters count every launch in the
/// process: the lock keeps the other tests' launches out).
#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn wgsl_layer_norm_and_token_logprob_match_their_twin_on_wgpu() {
    let _serial = one_at_a_time();
    let gpu = common::wgpu_device();
    // one row and a ragged workgroup; widths not a multiple of 4; more columns than rows
    for shape in [[1, 1, 5], [3, 7, 61], [4, 33, 128], [1, 3, 300]] {
        let before = layer_norm::wgsl_launches();
        let got = layer_norm_value_and_grads(&|x, w, b| layer_norm(x, w, b, 1e-5), shape, &gpu);
        assert_eq!(
            layer_norm::wgsl_launches() - before,
            2,
            "forward + backward"
        );
        let want =
            layer_norm_value_and_grads(&|x, w, b| layer_norm_reference(x, w, b, 1e-5), shape, &gpu);
        assert_close(&["y", "dx", "dweight", "dbias"], &got, &want, shape);
    }
    for shape in [[1, 1, 2], [3, 7, 61], [4, 17, 1000], [1, 2, 5000]] {
        let before = token_logprob::wgsl_launches();
        let (y, g) = logprob_value_and_grad(&|l, t| token_logprobs(l, t), shape, &gpu);
        assert_eq!(
            token_logprob::wgsl_launches() - before,
            2,
            "forward + backward"
        );
        let (yr, gr) = logprob_value_and_grad(&|l, t| token_logprobs_reference(l, t), shape, &gpu);
        assert_close(&["values", "gradients"], &[y, g], &[yr, gr], shape);
    }
}

/// The global gradient norm's Σ g² by the WGSL kernel (one dispatch per tensor, a table of
/// partial sums) against the same sum taken in f64 on the host: tensors of one element, of one
/// workgroup's share and of several workgroups' (odd sizes), more tensors than a workgroup has
/// invocations (the table copied through by several).
#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn wgsl_sum_of_squares_matches_the_host_sum() {
    let _serial = one_at_a_time();
    let gpu = common::wgpu_device();
    let mut sizes = vec![1, 255, 256, 16_384, 16_385, 100_003, 1_100_000];
    sizes.extend((0..300).map(|i| 1 + i % 7));
    let values: Vec<Vec<f32>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| randn(n, 40 + i as u64, 1.0 + i as f32 % 3.0))
        .collect();
    let want: f64 = values.iter().flatten().map(|&v| v as f64 * v as f64).sum();
    let tensors = values.iter().map(|v| floats(v, [v.len()], &gpu)).collect();
    let before = sum_squares::wgsl_launches();
    let got = to_vec(sum_of_squares(tensors).unwrap()).unwrap()[0] as f64;
    assert_eq!(
        sum_squares::wgsl_launches() - before,
        sizes.len(),
        "one launch per tensor"
    );
    let rel = (got - want).abs() / want;
    assert!(rel < 1e-6, "Σ g² {got} against {want}: rel {rel}");
}

/// Value and the gradients of x, weight and bias of `Σ linear(x) ∘ w` for x (B, T, C_in), the
/// layer C_in → C_out; x read through a transposed (strided) view when `strided`.
fn linear_value_and_grads(
    kernel: bool,
    [b, t, c_in]: [usize; 3],
    c_out: usize,
    strided: bool,
) -> [Vec<f32>; 4] {
    let dev = Device::flex().autodiff();
    let n = b * t * c_in;
    let x = floats(&randn(n, 21, 2.0), [b, t, c_in], &dev).require_grad();
    let layer = Linear {
        weight: Param::from_tensor(floats(&randn(c_in * c_out, 22, 0.3), [c_in, c_out], &dev)),
        bias: Some(Param::from_tensor(floats(
            &randn(c_out, 23, 1.0),
            [c_out],
            &dev,
        ))),
    };
    let w = floats(&randn(b * t * c_out, 24, 1.0), [b, t, c_out], &dev);
    let input = if strided {
        // the same values, held (T, B, C_in) in memory
        x.clone()
            .swap_dims(0, 1)
            .reshape([t, b, c_in])
            .swap_dims(0, 1)
    } else {
        x.clone()
    };
    let y = if kernel {
        linear(&layer, input)
    } else {
        linear_reference(
            input,
            layer.weight.val(),
            layer.bias.as_ref().unwrap().val(),
        )
    };
    let g = (y.clone() * w).sum().backward();
    let grad = |p: &Param<Tensor<2>>| to_vec(p.val().grad(&g).unwrap()).unwrap();
    [
        to_vec(y).unwrap(),
        to_vec(x.grad(&g).unwrap()).unwrap(),
        grad(&layer.weight),
        to_vec(layer.bias.as_ref().unwrap().val().grad(&g).unwrap()).unwrap(),
    ]
}

#[test]
fn linear_kernel_matches_its_twin_in_values_and_gradients() {
    let _serial = one_at_a_time();
    // widths a multiple of the 8 lanes and not; more rows than one bias block of 64; the last
    // large enough that the products are spread over the thread pool
    let cases = [
        ([2, 3, 8], 5, false),
        ([3, 7, 61], 29, true),
        ([4, 70, 128], 384, false),
    ];
    for (shape, c_out, strided) in cases {
        let before = linear::cpu_launches();
        let got = linear_value_and_grads(true, shape, c_out, strided);
        assert_eq!(
            linear::cpu_launches() - before,
            2,
            "forward + backward kernel"
        );
        let want = linear_value_and_grads(false, shape, c_out, strided);
        assert_close(&["y", "dx", "dweight", "dbias"], &got, &want, shape);
    }
}

/// Values and gradients of every CPU kernel on fixed inputs, in one list.
fn all_kernels() -> Vec<Vec<f32>> {
    let attention = |shape: [usize; 3]| {
        let dev = Device::flex().autodiff();
        let [b, t, hs] = shape;
        let qkv: Vec<Tensor<4>> = (0..3)
            .map(|i| {
                floats(&randn(b * 2 * t * hs, 10 + i, 2.0), [b, 2, t, hs], &dev).require_grad()
            })
            .collect();
        let o = causal_attention(qkv[0].clone(), qkv[1].clone(), qkv[2].clone(), None, 0);
        let g = (o.clone() * floats(&randn(b * 2 * t * hs, 13, 1.0), [b, 2, t, hs], &dev))
            .sum()
            .backward();
        let mut all = to_vec(o).unwrap();
        for x in &qkv {
            all.extend(to_vec(x.grad(&g).unwrap()).unwrap());
        }
        all
    };
    let (y, g) = value_and_grad(&|x| gelu_new(x), [4, 33, 129], false);
    let (lp, dl) = logprob_value_and_grad(&|l, t| token_logprobs(l, t), [4, 17, 1000], &cpu());
    let ln = layer_norm_value_and_grads(&|x, w, b| layer_norm(x, w, b, 1e-5), [4, 33, 61], &cpu());
    let lin = linear_value_and_grads(true, [4, 70, 128], 384, false);
    [
        vec![y, g, lp, dl],
        ln.to_vec(),
        lin.to_vec(),
        vec![attention([3, 37, 24])],
    ]
    .concat()
}

fn assert_same_bits(a: &[Vec<f32>], b: &[Vec<f32>], what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (a, b)) in a.iter().zip(b).enumerate() {
        let same = a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "output {i} differs {what}");
    }
}

/// The kernels spread their work over the thread pool they are called from (the training
/// stages give each micro-batch a pool of its own): the bits must not depend on its size.
#[test]
fn kernels_give_the_same_bits_on_any_thread_count() {
    let _serial = one_at_a_time();
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(all_kernels)
    };
    let one = on(1);
    assert_same_bits(&one, &on(3), "between 1 and 3 threads");
    assert_same_bits(&one, &on(2), "between 1 and 2 threads");
}

/// The kernels' loops run with AVX2 where the CPU has it and as built (SSE2) where not; both must
/// give the same bits, or a run would not reproduce on another machine. Values and gradients of
/// each kernel, both ways, compared with `==`. Only an x86-64 CPU with AVX2 can run both copies:
/// on one without, the test fails saying so rather than compare the SSE2 copy with itself.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "the AVX2 copy of the loops exists on x86-64 only"
)]
fn kernels_give_the_same_bits_with_and_without_avx2() {
    let _serial = one_at_a_time();
    set_scalar_only(true);
    assert!(!avx2_allowed(), "the scalar switch must turn AVX2 off");
    let scalar = all_kernels();
    set_scalar_only(false);
    assert!(
        avx2_allowed(),
        "this CPU has no AVX2: the two copies of the loops cannot both run here"
    );
    let vector = all_kernels();
    assert_same_bits(
        &scalar,
        &vector,
        "between the SSE2 and AVX2 builds of the loops",
    );
}

/// The model's linear layers take the kernel: four per block, a forward and a backward call each.
#[test]
fn the_model_runs_its_linear_layers_through_the_kernel() {
    let _serial = one_at_a_time();
    let dev = Device::flex().autodiff();
    let mut cfg = rlhf::config::ModelConfig::preset("tiny").unwrap();
    cfg.vocab_size = 50;
    let model = rlhf::model::Lm::new(&cfg, &mut rlhf::model::InitRng::new(0), &dev);
    let idx = ints(
        &(0..24).map(|i| i % 50).collect::<Vec<i64>>(),
        [2, 12],
        &dev,
    );
    let before = linear::cpu_launches();
    let _grads = model.forward(idx).sum().backward();
    assert_eq!(linear::cpu_launches() - before, 2 * 4 * cfg.n_layer);
}
