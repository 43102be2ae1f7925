//! Attention over c_attn's fused output (`causal_attention_qkv`: the heads read in place on the
//! CPU backend, split out by one dispatch on wgpu) against the split into heads and the
//! reference twin, with the launches of each path counted.

use super::{common, one_at_a_time, randn, TOL};
use burn::prelude::*;
use rlhf::kernels::attention::{self, attention_reference, causal_attention_qkv, split_heads};
use rlhf::util::tensors::{floats, to_vec};

/// Attention over the fused c_attn output (the heads read in place on the CPU, split out by one
/// dispatch on wgpu; dQ, dK, dV written into one d qkv) against the split into heads and the
/// reference twin: output and d qkv, with and without padding, on `device`. Returns the
/// launches of the attention kernels and of the qkv path (CPU: the qkv extension; wgpu: the
/// heads kernel) over the fused runs.
fn fused_qkv_matches_reference_on(device: &Device) -> (usize, usize) {
    let _serial = one_at_a_time();
    let ad = device.clone().autodiff();
    let launches = || match device.clone().as_dispatch() {
        burn::backend::DispatchDevice::Flex(_) => {
            (attention::cpu_launches(), attention::cpu_qkv_launches())
        }
        _ => (attention::wgsl_launches(), attention::heads_wgsl_launches()),
    };
    let mut counted = (0, 0);
    for (b, t, nh, hs, padded) in [(2, 9, 2, 4, false), (3, 37, 3, 8, true)] {
        let c3 = 3 * nh * hs;
        let qkv_host = randn(b * t * c3, 31);
        let w = floats(&randn(b * nh * t * hs, 32), [b, nh, t, hs], &ad);
        // row 1 left-padded by 3
        let mut pad = vec![false; b * t];
        if padded {
            pad[t..t + 3].fill(true);
        }
        let key_pad = || {
            padded.then(|| Tensor::<2, Bool>::from_data(TensorData::new(pad.clone(), [b, t]), &ad))
        };
        let run = |fused: bool| {
            let qkv = floats(&qkv_host, [b, t, c3], &ad).require_grad();
            let o = if fused {
                causal_attention_qkv(qkv.clone(), nh, key_pad())
            } else {
                let [q, k, v] = split_heads(qkv.clone(), nh);
                attention_reference(q, k, v, key_pad(), 0)
            };
            let g = (o.clone() * w.clone()).sum().backward();
            (to_vec(o).unwrap(), to_vec(qkv.grad(&g).unwrap()).unwrap())
        };
        let before = launches();
        let (o, d) = run(true);
        let after = launches();
        counted.0 += after.0 - before.0;
        counted.1 += after.1 - before.1;
        let (o_ref, d_ref) = run(false);
        assert!(common::max_rel_diff(&o, &o_ref) <= TOL, "output");
        assert!(common::max_rel_diff(&d, &d_ref) <= TOL, "d qkv");
        assert!(d_ref.iter().any(|v| v.abs() > 0.1), "vacuous");
    }
    counted
}

#[test]
fn attention_from_the_fused_qkv_matches_reference_on_the_cpu() {
    let (kernel, qkv) = fused_qkv_matches_reference_on(&Device::flex());
    // two shapes, each a forward and a backward kernel, through the heads read in place
    assert_eq!(
        (kernel, qkv),
        (4, 4),
        "(attention kernel, qkv path) launches"
    );
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn attention_from_the_fused_qkv_matches_reference_on_wgpu() {
    let (kernel, heads) = fused_qkv_matches_reference_on(&common::wgpu_device());
    // two shapes, each: forward, backward dK/dV and dQ; the heads split forward, split again
    // and merged backward
    assert_eq!(
        (kernel, heads),
        (6, 6),
        "(attention kernels, heads kernel) launches"
    );
}
