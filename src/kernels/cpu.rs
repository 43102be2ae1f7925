//! What the CPU kernels (the Flex implementations of the kernel extensions) share: host views of
//! Flex tensors, a vectorisable `exp`, the small vector loops (dot, max, sum) they are made of,
//! a matmul on slices, and the AVX2 dispatch (`simd_dispatch!`).
//!
//! Why hand-written loops and not burn ops: on the Flex backend each burn op is one pass over
//! memory with its own allocation, and `exp`, `tanh` and `sigmoid` are scalar libm calls; a fused
//! kernel makes one pass, keeps its temporaries in registers and uses [`exp`], a branch-free
//! polynomial the compiler vectorises. The loops use plain `a * b + c` (no `mul_add`): with no
//! fused multiply-add the results are the same on every x86-64 and ARM CPU, and each output is
//! computed in a fixed order by one thread, so runs stay bitwise reproducible.

use burn::backend::flex::FlexTensor;
use burn::backend::DispatchDevice;
use burn::tensor::{Device, TensorData};
use std::borrow::Cow;

/// True when `device` (with or without autodiff) is the Flex CPU backend and the kernels are not
/// turned off (`--no-kernels`): where the CPU kernels apply.
pub fn is_cpu_kernel_device(device: &Device) -> bool {
    !super::kernels_disabled()
        && matches!(
            device.clone().inner().as_dispatch(),
            DispatchDevice::Flex(_)
        )
}

/// The elements of `t` in row-major order: borrowed when `t` is contiguous, a copy when it is a
/// strided view.
pub fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .map(<[f32]>::to_vec)
                .unwrap_or_default(),
        ),
    }
}

/// A contiguous tensor of `shape` holding `data`.
pub fn tensor(data: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape.to_vec()))
}

/// Dims of `t`.
pub fn dims(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().iter().copied().collect()
}

const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// 1.5 · 2²³: adding it rounds a float in (−2²², 2²²) to the nearest integer.
const ROUND: f32 = 12_582_912.0;

/// e^x to within 2 ulp for x in [−87.3, 88.3], 0 below, and e^88.3 above: range reduction
/// x = n·ln2 + r with |r| ≤ ln2/2, a degree-6 Taylor polynomial in r, and 2^n built in the
/// exponent bits. No branches and no calls, so loops over it vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let xc = if x > 88.3 { 88.3 } else { x };
    let xc = if xc < -87.3 { -87.3 } else { xc };
    let t = xc * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let bits = (t.to_bits() as i32).wrapping_sub(0x4B40_0000); // n as an integer
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    let scale = f32::from_bits((bits.wrapping_add(127) << 23) as u32);
    if x < -87.3 {
        0.0
    } else {
        p * scale
    }
}

/// `simd_dispatch!(vis name => plain, (args) -> R)` defines `vis fn name(args) -> R`, which runs
/// the `#[inline(always)]` function `plain` compiled with AVX2 turned on where the CPU has it
/// (checked at run time), else as built (x86-64's baseline is SSE2). The kernels' loops use no
/// fused multiply-add and the same order of operations at any vector width, so both give the same
/// bits; only the speed differs (twice as many lanes per instruction). `plain` must be a named
/// function: a closure would not be inlined into the AVX2 copy reliably.
macro_rules! simd_dispatch {
    (
        $(#[$m:meta])* $vis:vis $name:ident => $plain:path,
        ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?
    ) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                $(#[$m])*
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $plain($($arg),*)
                }
                if $crate::kernels::cpu::avx2_allowed() {
                    // SAFETY: avx2_allowed checked that this CPU has AVX2
                    return unsafe { avx2($($arg),*) };
                }
            }
            $plain($($arg),*)
        }
    };
}
pub(crate) use simd_dispatch;

/// True where [`simd_dispatch`] runs the AVX2 copy: an x86-64 CPU with AVX2, unless
/// [`set_scalar_only`] turned it off.
pub fn avx2_allowed() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        !SCALAR_ONLY.load(std::sync::atomic::Ordering::Relaxed)
            && std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

static SCALAR_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes the kernels run their loops as built, without AVX2, in this process (tests: both copies
/// must give the same bits).
pub fn set_scalar_only(on: bool) {
    SCALAR_ONLY.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Σ a·b over equal-length slices, in 8 interleaved partial sums (so it vectorises), then those
/// summed in a fixed order.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ar.iter().zip(br) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// The largest element (−∞ for none), over 8 interleaved lanes so it vectorises.
#[inline(always)]
pub fn max(a: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let c = a.chunks_exact(8);
    let mut m = c
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    for x in c {
        for l in 0..8 {
            acc[l] = if x[l] > acc[l] { x[l] } else { acc[l] };
        }
    }
    for v in acc {
        m = m.max(v);
    }
    m
}

/// Σ a, over 8 interleaved lanes summed in a fixed order (so it vectorises).
#[inline(always)]
pub fn sum(a: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let c = a.chunks_exact(8);
    let tail: f32 = c.remainder().iter().sum();
    for x in c {
        for l in 0..8 {
            acc[l] += x[l];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// a ← e^(a − shift), element by element. A plain map, so it vectorises; a loop that also summed
/// the results as it went would not (each add waits for the one before), which is why the sums
/// are a second pass ([`sum`]).
#[inline(always)]
pub fn exp_shifted(a: &mut [f32], shift: f32) {
    for x in a.iter_mut() {
        *x = exp(*x - shift);
    }
}

/// `sums ←` itself plus each row of `rows` (rows of `sums.len()` floats), the rows in order: the
/// per-block partial sums of the weight and bias gradients, and those blocks added together, in
/// an order that does not depend on the thread count.
#[inline(always)]
fn add_rows(rows: &[f32], sums: &mut [f32]) {
    for row in rows.chunks_exact(sums.len().max(1)) {
        for (s, &r) in sums.iter_mut().zip(row) {
            *s += r;
        }
    }
}

simd_dispatch!(pub column_sums => add_rows, (rows: &[f32], sums: &mut [f32]));

/// A read-only matrix over a slice: `rows × cols`, element (r, c) at `r·rs + c·cs`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows × cols` matrix whose rows are `rs` apart.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize, rs: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs,
            cs: 1,
        }
    }

    /// The transpose (a view: nothing moves).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Row r of a matrix with contiguous rows (cs = 1).
    pub fn row(&self, r: usize) -> &'a [f32] {
        debug_assert_eq!(self.cs, 1);
        &self.data[r * self.rs..r * self.rs + self.cols]
    }

    /// Index one past the last element, 0 when empty.
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

/// `dst = scale·lhs·rhs`, with dst row-major, rows `dst_rs` apart, through the matmul library
/// burn Flex multiplies with, on the calling thread (the kernels parallelise over blocks): a
/// fixed order of operations for a given CPU.
pub fn matmul(dst: &mut [f32], dst_rs: usize, lhs: Mat, rhs: Mat, scale: f32) {
    matmul_on(dst, dst_rs, lhs, rhs, scale, false);
}

/// `dst += scale·lhs·rhs`, as [`matmul`] otherwise: what sums a gradient over several blocks
/// (the attention's dK and dV over a key/value head's group of query heads).
pub fn matmul_add(dst: &mut [f32], dst_rs: usize, lhs: Mat, rhs: Mat, scale: f32) {
    matmul_on(dst, dst_rs, lhs, rhs, scale, true);
}

/// [`matmul`] (`add` false) or [`matmul_add`] (`add` true).
fn matmul_on(dst: &mut [f32], dst_rs: usize, lhs: Mat, rhs: Mat, scale: f32, add: bool) {
    let (m, n) = check_operands(&lhs, &rhs);
    let dst_extent = Mat::rows(dst, m, n, dst_rs).extent();
    assert!(dst_extent <= dst.len(), "matmul: destination too small");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: every element gemm reads or writes lies inside the slices (checked above), and dst
    // is borrowed mutably, the operands shared: they cannot overlap.
    unsafe {
        gemm_into(
            dst.as_mut_ptr(),
            dst_rs,
            lhs,
            rhs,
            scale,
            add,
            gemm::Parallelism::None,
        )
    }
}

/// The output's (rows, cols) of `lhs·rhs`, after checking that the inner sizes agree and that
/// both operands lie inside their slices (what makes the gemm calls sound).
fn check_operands(lhs: &Mat, rhs: &Mat) -> (usize, usize) {
    assert_eq!(rhs.rows, lhs.cols, "matmul: inner sizes differ");
    assert!(lhs.extent() <= lhs.data.len() && rhs.extent() <= rhs.data.len());
    (lhs.rows, rhs.cols)
}

/// `dst = scale·lhs·rhs` through gemm, dst row-major with rows `dst_rs` apart and not read
/// (`add` false), or `dst += scale·lhs·rhs` (`add` true).
/// # Safety
/// `dst` must be valid for writes (and reads, with `add`) of `lhs.rows` rows of `rhs.cols`
/// floats `dst_rs` apart, not overlapping the operands, and the operands must lie inside their
/// slices.
unsafe fn gemm_into(
    dst: *mut f32,
    dst_rs: usize,
    lhs: Mat,
    rhs: Mat,
    scale: f32,
    add: bool,
    parallelism: gemm::Parallelism,
) {
    unsafe {
        gemm::gemm(
            lhs.rows,
            rhs.cols,
            lhs.cols,
            dst,
            1,
            dst_rs as isize,
            add, // dst read (and added to) or only written
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Multiply-adds from which a [`matmul_new`] is spread over the thread pool: burn Flex's own
/// threshold, below which the hand-off costs more than it saves.
const PARALLEL_MACS: usize = 192 * 192 * 192;

/// `lhs·rhs` as a new row-major `lhs.rows × rhs.cols` vector, through the matmul library burn
/// Flex multiplies with, spread over the thread pool when large. The vector is allocated but not
/// zeroed first (gemm writes every element), unlike a burn matmul's output, which is zeroed and
/// then copied once more to re-align it. The library splits the work over rows and columns only,
/// never over the inner dimension, so the bits do not depend on the thread count.
pub fn matmul_new(lhs: Mat, rhs: Mat) -> Vec<f32> {
    let ((m, n), k) = (check_operands(&lhs, &rhs), lhs.cols);
    let Some(len) = m.checked_mul(n) else {
        panic!("matmul: an output of {m} × {n} overflows")
    };
    if k == 0 {
        return vec![0.0; len];
    }
    let parallelism = if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let mut dst: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: the operands lie inside their slices (checked above) and dst holds m·n floats of
    // capacity; with k > 0 and the destination not read, gemm writes each of them exactly once,
    // so all `len` are initialised when the length is set.
    unsafe {
        gemm_into(dst.as_mut_ptr(), n, lhs, rhs, 1.0, false, parallelism);
        dst.set_len(len);
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm_and_saturates() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
            x += 0.013;
        }
        assert!(worst < 2.4e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1.0e9), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(1.0e9).is_finite() && exp(1.0e9) > 1.0e38);
    }

    #[test]
    fn dot_max_and_sum_match_plain_loops() {
        let a: Vec<f32> = (0..21).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..21).map(|i| 1.0 - i as f32 * 0.25).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - want).abs() < 1e-4);
        // the largest in the 8-lane part and in the tail
        assert_eq!(max(&b), 1.0);
        assert_eq!(max(&a), 7.0);
        assert!((sum(&a) - a.iter().sum::<f32>()).abs() < 1e-4);
    }
}
