//! Launching the LayerNorm WGSL kernels (`shaders/layer_norm_fwd.wgsl`,
//! `shaders/layer_norm_bwd.wgsl`) on CubeCL/wgpu: one invocation per row forward; backward one per
//! row (dx) and one per column (the weight and bias gradients) in the same dispatch.

use super::LayerNormExt;
use crate::kernels::wgsl_1d::{empty_like, grid, rows_cols, Wgsl1d};
use crate::kernels::LaunchCounter;
use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::{into_contiguous, CubeBackend, CubeTensor};

/// Invocations in a workgroup.
const WORKGROUP: u32 = 64;

static WGSL_LAUNCHES: LaunchCounter = LaunchCounter::new();

/// How many times a LayerNorm WGSL kernel has been launched in this process (forward and
/// backward each count one).
pub fn wgsl_launches() -> usize {
    WGSL_LAUNCHES.get()
}

fn fwd_kernel() -> Wgsl1d {
    Wgsl1d {
        name: "layer_norm_fwd",
        text: include_str!("../../../shaders/layer_norm_fwd.wgsl"),
        wg: WORKGROUP,
        extra: &[],
    }
}

fn bwd_kernel() -> Wgsl1d {
    Wgsl1d {
        name: "layer_norm_bwd",
        text: include_str!("../../../shaders/layer_norm_bwd.wgsl"),
        wg: WORKGROUP,
        extra: &[],
    }
}

/// The workgroup size and the final WGSL text of each pass: (name, text).
pub fn sources() -> (u32, Vec<(&'static str, String)>) {
    (
        WORKGROUP,
        vec![
            ("fwd", fwd_kernel().final_text()),
            ("bwd", bwd_kernel().final_text()),
        ],
    )
}

impl LayerNormExt for CubeBackend {
    fn layer_norm_fwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (x, w, b): (CubeTensor, CubeTensor, CubeTensor) = (
            into_contiguous(x),
            into_contiguous(weight),
            into_contiguous(bias),
        );
        let (n, c) = rows_cols(&x);
        let (y, mean, rstd) = (
            empty_like(&x, &[n, c]),
            empty_like(&x, &[n]),
            empty_like(&x, &[n]),
        );
        let info = [n as u32, c as u32, (eps as f32).to_bits()];
        fwd_kernel().launch_buffers(grid(n, WORKGROUP), &[&x, &w, &b, &y, &mean, &rstd], &info);
        WGSL_LAUNCHES.add();
        (y, mean, rstd)
    }

    fn layer_norm_bwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [x, w, mean, rstd, dy]: [CubeTensor; 5] =
            [x, weight, mean, rstd, dy].map(into_contiguous);
        let (n, c) = rows_cols(&x);
        let (dx, dw, db) = (
            empty_like(&x, &[n, c]),
            empty_like(&x, &[c]),
            empty_like(&x, &[c]),
        );
        bwd_kernel().launch_buffers(
            grid(n + c, WORKGROUP),
            &[&x, &w, &mean, &rstd, &dy, &dx, &dw, &db],
            &[n as u32, c as u32],
        );
        WGSL_LAUNCHES.add();
        (dx, dw, db)
    }
}
