//! The fused causal attention on the CPU backend (Flex): one task per (sequence, head) block on
//! the thread pool, each computing its rows in a fixed order, so the result does not depend on
//! how the pool schedules them.
//!
//! Forward, per block: S = Q·Kᵀ/√hs (T × Tk) through the matmul library burn Flex uses, each row
//! turned into its attention weights in place (the keys it may not see, `j > t_past + i` or
//! padding, get weight 0; one max pass, exp, sum), O = P·V, and each row's log-sum-exp L.
//! Backward recomputes P = e^(S − L) the same way (nothing T × Tk is kept between the passes):
//! dV = Pᵀ·dO, dS = P ∘ (dO·Vᵀ − D)/√hs with D = rowsum(dO ∘ O), dQ = dS·K, dK = dSᵀ·Q. A row that
//! sees no key (padding only) is what the twin makes of it: uniform weights over all Tk keys, no
//! gradient to Q or K.
//!
//! Grouped-query attention (K, V with nkv heads, nkv dividing nh): the block of query head h reads
//! key/value head h / (nh / nkv) in place. The backward runs one task per (sequence, key/value
//! head), which takes the group's query heads in turn: each writes its own dQ, and the first writes
//! dK and dV, the others add to them (a fixed order, so the sums do not depend on the schedule;
//! no atomics, no per-query-head copy of dK, dV). With nkv = nh that is one task per block, as
//! plain multi-head attention was.
//!
//! Q, K, V and dO are read in place when their rows are contiguous (the model's Q/K/V are views
//! into the fused c_attn output), and O is written as (B, T, nh, hs) and returned as the
//! (B, nh, T, hs) view of it, so the model's `swap_dims(1, 2).reshape` after it costs no copy.

use super::{kv_group, AttentionExt, AttentionQkvExt, MASK_VALUE};
use crate::kernels::cpu::{
    dims, dot, exp_shifted, matmul, matmul_add, max, simd_dispatch, sum, tensor, values, Mat,
};
use crate::kernels::LaunchCounter;
use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::backend::tensor::FloatTensor;
use burn::tensor::{DType, Shape};
use rayon::prelude::*;
use std::borrow::Cow;

static CPU_LAUNCHES: LaunchCounter = LaunchCounter::new();

/// CPU attention kernels run so far in this process (a forward and a backward each count one).
pub fn cpu_launches() -> usize {
    CPU_LAUNCHES.get()
}

static CPU_QKV_LAUNCHES: LaunchCounter = LaunchCounter::new();

/// Of those, the ones that read the heads straight out of c_attn's output ([`AttentionQkvExt`]).
pub fn cpu_qkv_launches() -> usize {
    CPU_QKV_LAUNCHES.get()
}

/// A rank-4 tensor (A, B, R, n) read as rows of n contiguous floats, in place where its layout
/// allows (inner stride 1, non-negative strides), else from a contiguous copy.
struct Rows<'a> {
    data: Cow<'a, [f32]>,
    offset: usize,
    strides: [usize; 3],
    n: usize,
}

impl<'a> Rows<'a> {
    fn new(t: &'a FlexTensor) -> Self {
        let d = dims(t);
        let l = t.layout();
        let s = l.strides();
        if l.has_contiguous_inner() && l.has_positive_strides() && s[3] == 1 {
            Self {
                data: Cow::Borrowed(t.storage::<f32>()),
                offset: l.start_offset(),
                strides: [s[0] as usize, s[1] as usize, s[2] as usize],
                n: d[3],
            }
        } else {
            Self {
                data: values(t),
                offset: 0,
                strides: [d[1] * d[2] * d[3], d[2] * d[3], d[3]],
                n: d[3],
            }
        }
    }

    /// Row (a, b, r).
    #[inline(always)]
    fn row(&self, a: usize, b: usize, r: usize) -> &[f32] {
        let at = self.offset + a * self.strides[0] + b * self.strides[1] + r * self.strides[2];
        &self.data[at..at + self.n]
    }

    /// Rows (a, b, 0..rows) as a (rows × n) matrix.
    fn mat(&self, a: usize, b: usize, rows: usize) -> Mat<'_> {
        let at = self.offset + a * self.strides[0] + b * self.strides[1];
        Mat::rows(&self.data[at..], rows, self.n, self.strides[2])
    }
}

/// A block's dK and dV, each (Tk, hs): written by the first query head of a key/value head's
/// group (`add` false), added to by the others.
struct KvGrads<'a> {
    dk: &'a mut [f32],
    dv: &'a mut [f32],
    add: bool,
}

/// What one (sequence, head) block reads: the whole inputs, and which block it is.
#[derive(Clone, Copy)]
struct Block<'a> {
    q: &'a Rows<'a>,
    k: &'a Rows<'a>,
    v: &'a Rows<'a>,
    /// (B, Tk) 1.0 at padding keys
    pad: &'a [f32],
    tk: usize,
    t_past: usize,
    scale: f32,
    /// query heads per key/value head (nh / nkv)
    group: usize,
    /// the block: sequence b, query head h (key/value head h / group)
    b: usize,
    h: usize,
}

impl<'a> Block<'a> {
    /// q (B, nh, T, hs), k, v (B, nkv, Tk, hs), pad: (B, Tk); `group` = nh / nkv.
    fn new(
        (q, k, v): (&'a Rows, &'a Rows, &'a Rows),
        pad: &'a [f32],
        tk: usize,
        t_past: usize,
        group: usize,
    ) -> Self {
        Self {
            tk,
            q,
            k,
            v,
            pad,
            t_past,
            group,
            scale: 1.0 / (q.n as f32).sqrt(),
            b: 0,
            h: 0,
        }
    }

    /// Block (b, h).
    fn at(self, b: usize, h: usize) -> Self {
        Self { b, h, ..self }
    }

    /// Row i of the scaled scores (Tk) into row i of the attention weights, in place: the keys
    /// the row may not see get 0; returns the row's log-sum-exp L, or None when it sees no key
    /// (then the weights are the twin's uniform 1/Tk). With `lse` given, the weights are
    /// `e^(s − L)` (the backward's recomputation) instead of normalised by their own sum.
    #[inline(always)]
    fn softmax_row(&self, i: usize, row: &mut [f32], lse: Option<f32>) -> Option<f32> {
        let pad = &self.pad[self.b * self.tk..(self.b + 1) * self.tk];
        let last = (self.t_past + i).min(self.tk - 1);
        let (seen, unseen) = row.split_at_mut(last + 1);
        unseen.fill(0.0);
        for (s, &p) in seen.iter_mut().zip(pad) {
            *s = if p == 0.0 { *s } else { MASK_VALUE };
        }
        let m = max(seen);
        if m <= MASK_VALUE {
            row.fill(1.0 / self.tk as f32);
            return None;
        }
        exp_shifted(seen, lse.unwrap_or(m));
        if lse.is_some() {
            return lse;
        }
        let sum = sum(seen);
        let inv = 1.0 / sum;
        for s in seen.iter_mut() {
            *s *= inv;
        }
        Some(m + sum.ln())
    }

    /// Q (T × hs), K, V (Tk × hs) and a (T × hs) input of this block as matrices; K and V of
    /// the key/value head the query head reads.
    fn mats<'r>(&self, t: usize, other: &'r Rows<'r>) -> [Mat<'_>; 4]
    where
        'r: 'a,
    {
        let kvh = self.h / self.group;
        [
            self.q.mat(self.b, self.h, t),
            self.k.mat(self.b, kvh, self.tk),
            self.v.mat(self.b, kvh, self.tk),
            other.mat(self.b, self.h, t),
        ]
    }

    /// Rows 0..T of O, written into `o` (T rows of `stride` floats, hs used), and L into `lse`;
    /// `p` is (T × Tk) scratch.
    #[inline(always)]
    fn forward(&self, o: &mut [f32], stride: usize, lse: &mut [f32], p: &mut [f32]) {
        let (t, tk) = (lse.len(), self.tk);
        let [q, k, v, _] = self.mats(t, self.q);
        matmul(p, tk, q, k.t(), self.scale); // scaled scores (T, Tk)
        for (i, row) in p.chunks_exact_mut(tk).enumerate() {
            lse[i] = self
                .softmax_row(i, row, None)
                .unwrap_or(MASK_VALUE + (tk as f32).ln());
        }
        matmul(o, stride, Mat::rows(p, t, tk, tk), v, 1.0); // (T, hs)
    }

    /// dQ (T × hs) of this block, and its share of dK and dV (Tk × hs), from O, L and dO; `p`,
    /// `dp` are (T × Tk) scratch.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn backward(
        &self,
        o: &Rows,
        lse: &[f32],
        d_o: &Rows,
        dq: &mut [f32],
        kv: KvGrads,
        p: &mut [f32],
        dp: &mut [f32],
    ) {
        let (t, tk, hs) = (lse.len(), self.tk, self.q.n);
        let kv_mm = if kv.add { matmul_add } else { matmul };
        let [q, k, v, d_o] = self.mats(t, d_o);
        matmul(p, tk, q, k.t(), self.scale);
        let mut sees = vec![true; t];
        for (i, row) in p.chunks_exact_mut(tk).enumerate() {
            sees[i] = self.softmax_row(i, row, Some(lse[i])).is_some();
        }
        let pm = Mat::rows(p, t, tk, tk);
        kv_mm(kv.dv, hs, pm.t(), d_o, 1.0); // dV (+)= Pᵀ·dO (Tk, hs)
        matmul(dp, tk, d_o, v.t(), 1.0); // dP = dO·Vᵀ (T, Tk)
        for (i, (ds, p)) in dp.chunks_exact_mut(tk).zip(p.chunks_exact(tk)).enumerate() {
            if !sees[i] {
                ds.fill(0.0); // every score masked: no gradient reaches it
                continue;
            }
            let di = dot(d_o.row(i), o.row(self.b, self.h, i));
            for (ds, &p) in ds.iter_mut().zip(p) {
                *ds = p * (*ds - di) * self.scale;
            }
        }
        let dsm = Mat::rows(dp, t, tk, tk);
        matmul(dq, hs, dsm, k, 1.0); // dQ = dS·K/√hs (T, hs)
        kv_mm(kv.dk, hs, dsm.t(), q, 1.0); // dK (+)= dSᵀ·Q/√hs (Tk, hs)
    }
}

simd_dispatch!(
    forward_simd => Block::forward,
    (blk: &Block, o: &mut [f32], stride: usize, lse: &mut [f32], p: &mut [f32])
);

simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    backward_simd => Block::backward,
    (
        blk: &Block, o: &Rows, lse: &[f32], d_o: &Rows, dq: &mut [f32], kv: KvGrads,
        p: &mut [f32], dp: &mut [f32]
    )
);

impl AttentionExt for Flex {
    fn flash_attention_fwd(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        t_past: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        CPU_LAUNCHES.add();
        let [b, nh, t, hs] = [0, 1, 2, 3].map(|i| dims(&q)[i]);
        let group = kv_group(nh, dims(&k)[1]);
        let (qr, kr, vr, pad) = (Rows::new(&q), Rows::new(&k), Rows::new(&v), values(&pad));
        let tk = pad.len() / b.max(1);
        // O as (B, T, nh, hs): row i of head h of sequence b at b·T·nh·hs + i·nh·hs + h·hs
        let mut o = vec![0.0f32; b * t * nh * hs];
        let mut lse = vec![0.0f32; b * nh * t];
        let base = Block::new((&qr, &kr, &vr), &pad, tk, t_past, group);
        // one task per sequence (its (T, nh·hs) slab of O), its heads in turn
        o.par_chunks_mut((t * nh * hs).max(1))
            .zip(lse.par_chunks_mut((nh * t).max(1)))
            .enumerate()
            .for_each(|(bi, (slab, lse))| {
                let mut p = vec![0.0f32; t * tk];
                for (h, lse) in lse.chunks_exact_mut(t.max(1)).enumerate() {
                    forward_simd(&base.at(bi, h), &mut slab[h * hs..], nh * hs, lse, &mut p);
                }
            });
        let layout = Layout::new(
            Shape::from(vec![b, nh, t, hs]),
            vec![(t * nh * hs) as isize, hs as isize, (nh * hs) as isize, 1],
            0,
        );
        let o = tensor(o, &[b, t, nh, hs]).with_layout(layout);
        (o, tensor(lse, &[b, nh, t]))
    }

    fn flash_attention_bwd(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        d_out: FloatTensor<Self>,
        t_past: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        CPU_LAUNCHES.add();
        let [b, nh, t, hs] = [0, 1, 2, 3].map(|i| dims(&q)[i]);
        let (qr, kr, vr, pad) = (Rows::new(&q), Rows::new(&k), Rows::new(&v), values(&pad));
        let (or, dor, lse) = (Rows::new(&out), Rows::new(&d_out), values(&lse));
        let tk = pad.len() / b.max(1);
        let nkv = dims(&k)[1];
        let group = kv_group(nh, nkv);
        let base = Block::new((&qr, &kr, &vr), &pad, tk, t_past, group);
        let mut dq = vec![0.0f32; b * nh * t * hs];
        let (mut dk, mut dv) = (
            vec![0.0f32; b * nkv * tk * hs],
            vec![0.0f32; b * nkv * tk * hs],
        );
        // one task per (sequence, key/value head): the dQ of its group's query heads (adjacent in
        // dQ), and its dK, dV summed over them in head order
        dq.par_chunks_mut((group * t * hs).max(1))
            .zip(dk.par_chunks_mut((tk * hs).max(1)))
            .zip(dv.par_chunks_mut((tk * hs).max(1)))
            .enumerate()
            .for_each_init(
                || (vec![0.0f32; t * tk], vec![0.0f32; t * tk]),
                |(p, dp), (bkv, ((dq, dk), dv))| {
                    let (bi, h0) = (bkv / nkv, (bkv % nkv) * group);
                    for (g, dq) in dq.chunks_exact_mut((t * hs).max(1)).enumerate() {
                        let bh = bi * nh + h0 + g;
                        let lse = &lse[bh * t..(bh + 1) * t];
                        let kv = KvGrads {
                            dk: &mut *dk,
                            dv: &mut *dv,
                            add: g > 0,
                        };
                        backward_simd(&base.at(bi, h0 + g), &or, lse, &dor, dq, kv, p, dp);
                    }
                },
            );
        let s_kv = [b, nkv, tk, hs];
        (
            tensor(dq, &[b, nh, t, hs]),
            tensor(dk, &s_kv),
            tensor(dv, &s_kv),
        )
    }
}

/// The heads of Q, K and V as (B, nh, T, hs) views into qkv (B, T, 3C): no copy when qkv is
/// contiguous (what c_attn makes), one copy of it otherwise.
fn head_views(qkv: &FlexTensor, n_head: usize) -> [FlexTensor; 3] {
    let qkv = if qkv.is_contiguous() {
        qkv.clone()
    } else {
        qkv.to_contiguous()
    };
    let [b, t, c3] = [0, 1, 2].map(|i| dims(&qkv)[i]);
    let (c, start) = (c3 / 3, qkv.layout().start_offset());
    let hs = c / n_head;
    [0, 1, 2].map(|i| {
        let layout = Layout::new(
            Shape::from(vec![b, n_head, t, hs]),
            vec![(t * c3) as isize, hs as isize, c3 as isize, 1],
            start + i * c,
        );
        FlexTensor::from_arc(qkv.data_arc(), layout, DType::F32)
    })
}

impl AttentionQkvExt for Flex {
    fn flash_attention_qkv_fwd(
        qkv: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        n_head: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        CPU_QKV_LAUNCHES.add();
        let [q, k, v] = head_views(&qkv, n_head);
        <Flex as AttentionExt>::flash_attention_fwd(q, k, v, pad, 0)
    }

    fn flash_attention_qkv_bwd(
        qkv: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        d_out: FloatTensor<Self>,
        n_head: usize,
    ) -> FloatTensor<Self> {
        CPU_QKV_LAUNCHES.add();
        let [b, t, c3] = [0, 1, 2].map(|i| dims(&qkv)[i]);
        let [q, k, v] = head_views(&qkv, n_head);
        let (dq, dk, dv) =
            <Flex as AttentionExt>::flash_attention_bwd(q, k, v, pad, out, lse, d_out, 0);
        let parts = [values(&dq), values(&dk), values(&dv)]; // each (B, nh, T, hs)
        let (c, hs) = (c3 / 3, c3 / 3 / n_head.max(1));
        // d qkv[b, i, part·C + h·hs + d] = d part[b, h, i, d], one task per sequence
        let mut d = vec![0.0f32; b * t * c3];
        d.par_chunks_mut((t * c3).max(1))
            .enumerate()
            .for_each(|(bi, slab)| {
                for (p, part) in parts.iter().enumerate() {
                    for h in 0..n_head {
                        let src = &part[(bi * n_head + h) * t * hs..];
                        for i in 0..t {
                            let at = i * c3 + p * c + h * hs;
                            slab[at..at + hs].copy_from_slice(&src[i * hs..(i + 1) * hs]);
                        }
                    }
                }
            });
        tensor(d, &[b, t, c3])
    }
}
