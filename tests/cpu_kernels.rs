//! The CPU kernels (Flex implementations of the kernel extensions) against their reference twins
//! on the CPU backend: values and gradients, on contiguous and strided inputs, and proof (call
//! counters) that the model takes the kernel path.

mod common;

use burn::prelude::*;
use rlhf::kernels::gelu::{cpu_gelu_calls, gelu_new, gelu_reference};
use rlhf::util::rng::Rng;
use rlhf::util::tensors::{floats, to_vec};

/// Every test here reads process-wide call counters: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Roughly normal values of scale `s`.
fn randn(n: usize, seed: u64, s: f32) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|_| {
            (0..4)
                .map(|_| r.below(1 << 20) as f32 / (1 << 20) as f32 - 0.5)
                .sum::<f32>()
                * s
        })
        .collect()
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
        let before = cpu_gelu_calls();
        let (y, g) = value_and_grad(&|x| gelu_new(x), shape, strided);
        assert_eq!(cpu_gelu_calls() - before, 2, "forward + backward kernel");
        let (yr, gr) = value_and_grad(&|x| gelu_reference(x), shape, strided);
        assert!(common::max_rel_diff(&y, &yr) <= 1e-5, "values");
        assert!(common::max_rel_diff(&g, &gr) <= 1e-5, "gradients");
        assert!(gr.iter().any(|v| v.abs() > 0.1), "vacuous");
    }
}
