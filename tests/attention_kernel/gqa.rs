//! Grouped-query attention (k, v with nkv heads, nkv dividing nh; query head h reads key/value
//! head h / (nh / nkv)) through the fused kernels against the reference twin, which repeats each
//! key/value head for its group: outputs and dQ, dK, dV (dK and dV summed over each group) for
//! nh 4 over nkv 2 and 1 at head sizes 16 (the tiny preset's) and 64 (SmolLM2's), without and
//! with key padding and with a KV-cache offset, on the CPU backend and on wgpu (both work-size
//! plans); the reference's head order itself against `transformers`' `repeat_kv` made by hand;
//! and a training step and a KV-cache decode step of a tiny Llama (4 heads over 2 key/value heads).

use super::{
    case, check, common, kv_cache_decode_step_matches_reference_on, one_at_a_time, randn,
    training_step_matches_reference_on, Case,
};
use burn::prelude::*;
use rlhf::config::{Arch, Family, ModelConfig, ModelOverrides};
use rlhf::kernels::attention::attention_reference;
use rlhf::kernels::attention::plan::{plan, set_plan_override, AttnPlan};
use rlhf::util::tensors::{floats, to_vec};

/// B sequences of T queries, nh query heads over nkv key/value heads of size hs.
fn gqa(b: usize, nh: usize, nkv: usize, t: usize, hs: usize) -> Case {
    Case {
        nkv,
        ..case(b, nh, t, hs)
    }
}

/// The work-size plans to run on `dev`: on wgpu both (GPU: a row per thread; CPU adapters: 8
/// invocations × R rows), forced in turn; on the CPU backend there is none.
fn plans(dev: &Device, hs: usize) -> Vec<Option<AttnPlan>> {
    if rlhf::kernels::is_kernel_device(dev) {
        [false, true]
            .map(|cpu| Some(plan(hs, 32 * 1024, 1024, cpu)))
            .to_vec()
    } else {
        vec![None]
    }
}

/// Every case `cases(hs, nkv)` makes, for nh 4 over nkv 2 and 1, head sizes 16 and 64, each plan.
fn each_group(dev: &Device, cases: impl Fn(usize, usize) -> Vec<Case>) {
    let _serial = one_at_a_time();
    for hs in [16, 64] {
        for p in plans(dev, hs) {
            set_plan_override(p);
            for nkv in [2, 1] {
                for c in cases(hs, nkv) {
                    check(&c, dev);
                }
            }
        }
    }
    set_plan_override(None);
}

fn grouped_heads_match_reference_on(dev: &Device) {
    each_group(dev, |hs, nkv| vec![gqa(2, 4, nkv, 37, hs)]);
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn grouped_heads_match_reference() {
    grouped_heads_match_reference_on(&common::wgpu_device());
}

#[test]
fn grouped_heads_match_reference_on_the_cpu() {
    grouped_heads_match_reference_on(&Device::flex());
}

/// Row 0 left-padded by 7 (its first 7 queries see only padding), row 1 right-padded by 9.
fn grouped_heads_with_padding_match_reference_on(dev: &Device) {
    let (b, t) = (2, 40);
    let mut pad = vec![false; b * t];
    pad[..7].fill(true);
    pad[2 * t - 9..].fill(true);
    each_group(dev, |hs, nkv| {
        vec![Case {
            pad: Some(pad.clone()),
            ..gqa(b, 4, nkv, t, hs)
        }]
    });
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn grouped_heads_with_padding_match_reference() {
    grouped_heads_with_padding_match_reference_on(&common::wgpu_device());
}

#[test]
fn grouped_heads_with_padding_match_reference_on_the_cpu() {
    grouped_heads_with_padding_match_reference_on(&Device::flex());
}

/// One new query against 20 cached keys, and 5 new ones after 12 cached keys whose prompt is
/// left-padded by 3 in row 0.
fn grouped_heads_with_t_past_match_reference_on(dev: &Device) {
    let mut pad = vec![false; 2 * 17];
    pad[..3].fill(true);
    each_group(dev, |hs, nkv| {
        vec![
            Case {
                t_past: 20,
                ..gqa(2, 4, nkv, 1, hs)
            },
            Case {
                t_past: 12,
                pad: Some(pad.clone()),
                ..gqa(2, 4, nkv, 5, hs)
            },
        ]
    });
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn grouped_heads_with_t_past_match_reference() {
    grouped_heads_with_t_past_match_reference_on(&common::wgpu_device());
}

#[test]
fn grouped_heads_with_t_past_match_reference_on_the_cpu() {
    grouped_heads_with_t_past_match_reference_on(&Device::flex());
}

/// The reference's grouping is `transformers`' `repeat_kv` order (query head h reads key/value
/// head h / group, not h mod nkv): the same output as plain multi-head attention over K and V
/// repeated that way by hand, and a different one repeated the other way.
#[test]
fn reference_reads_key_value_head_h_over_group() {
    let dev = Device::flex();
    let (b, nh, nkv, t, hs) = (2, 4, 2, 9, 8);
    let group = nh / nkv;
    let q = floats(&randn(b * nh * t * hs, 41), [b, nh, t, hs], &dev);
    let kv = [42, 43].map(|s| randn(b * nkv * t * hs, s));
    // (B, nh, T, hs) with head h a copy of key/value head kv_of(h)
    let repeat = |x: &[f32], kv_of: &dyn Fn(usize) -> usize| {
        let mut out = Vec::with_capacity(b * nh * t * hs);
        for bi in 0..b {
            for h in 0..nh {
                let at = (bi * nkv + kv_of(h)) * t * hs;
                out.extend_from_slice(&x[at..at + t * hs]);
            }
        }
        floats(&out, [b, nh, t, hs], &dev)
    };
    let attend =
        |k: Tensor<4>, v: Tensor<4>| to_vec(attention_reference(q.clone(), k, v, None, 0)).unwrap();
    let grouped = attend(
        floats(&kv[0], [b, nkv, t, hs], &dev),
        floats(&kv[1], [b, nkv, t, hs], &dev),
    );
    let by_group = |h: usize| h / group;
    let want = attend(repeat(&kv[0], &by_group), repeat(&kv[1], &by_group));
    let rel = common::max_rel_diff(&grouped, &want);
    assert!(rel <= 1e-6, "grouped vs repeated by hand: max rel {rel}");
    let interleaved = |h: usize| h % nkv;
    let other = attend(repeat(&kv[0], &interleaved), repeat(&kv[1], &interleaved));
    let rel = common::max_rel_diff(&grouped, &other);
    assert!(
        rel > 1e-2,
        "h / group and h mod nkv agree here ({rel}): vacuous"
    );
}

/// The tiny preset as a Llama: 4 query heads over 2 key/value heads of size 16.
fn tiny_llama() -> ModelConfig {
    let cfg = super::tiny()
        .with_overrides(&ModelOverrides {
            arch: Some(Arch::Llama),
            ..Default::default()
        })
        .unwrap();
    let Family::Llama(l) = &cfg.family else {
        panic!("--arch llama gave {:?}", cfg.family)
    };
    assert_eq!((cfg.n_head, l.n_kv_head), (4, 2), "not grouped-query");
    cfg
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn tiny_llama_training_step_matches_reference() {
    training_step_matches_reference_on(&common::wgpu_device(), tiny_llama());
}

#[test]
fn tiny_llama_training_step_matches_reference_on_the_cpu() {
    training_step_matches_reference_on(&Device::flex(), tiny_llama());
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn tiny_llama_kv_cache_decode_step_matches_reference() {
    kv_cache_decode_step_matches_reference_on(&common::wgpu_device(), tiny_llama());
}

#[test]
fn tiny_llama_kv_cache_decode_step_matches_reference_on_the_cpu() {
    kv_cache_decode_step_matches_reference_on(&Device::flex(), tiny_llama());
}
