//! Half-precision and sharded checkpoints as `transformers` saves them: the reference model
//! rounded to F16 (`model_f16/`, one `model.safetensors`) and to BF16 (`model_bf16_sharded/`,
//! three shards and `model.safetensors.index.json`), both written by `save_pretrained` in
//! `make_reference.py`. Import must widen every half value to the f32 it stands for, bit for
//! bit, and give the logits `transformers` computes from the same directory loaded as float32.
//! A sharded index that names a missing file, or a shard that lacks or adds a tensor, is an
//! error naming the shard.

use super::{assert_close, hf_dir, imported_logits, read_reference, reference, Reference};
use crate::hf::logits;
use rlhf::checkpoint;
use rlhf::hf::weights::{gpt_tensors, read_safetensors, write_safetensors, HostTensor};
use safetensors::tensor::Dtype;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The dtypes of the tensors in a fixture's safetensors files: a fixture regenerated as f32 by
/// mistake would leave the half-precision reading untested.
fn stored_dtypes(fixture: &str) -> BTreeSet<Dtype> {
    let mut dtypes = BTreeSet::new();
    for e in std::fs::read_dir(reference().join(fixture)).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "safetensors") {
            let bytes = std::fs::read(&path).unwrap();
            let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
            dtypes.extend(meta.tensors().values().map(|t| t.dtype));
        }
    }
    dtypes
}

/// The imported checkpoint's weights under the names `transformers` saved them with.
fn imported_weights(out: &Path) -> BTreeMap<String, HostTensor> {
    let mut lm = checkpoint::load_lm(out, &burn::prelude::Device::flex()).unwrap();
    gpt_tensors(lm.model.as_gpt2_mut().unwrap(), "transformer.")
        .unwrap()
        .into_iter()
        .collect()
}

/// Every imported weight is the f32 fixture's weight rounded to half precision by `round`
/// (round to nearest even, as torch's `.to(dtype)` does) and widened back: compared as bits.
fn assert_widened_exactly(got: &BTreeMap<String, HostTensor>, round: fn(f32) -> f32) {
    let f32s = read_safetensors(&reference().join("model/model.safetensors")).unwrap();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        f32s.keys().collect::<Vec<_>>()
    );
    let (mut n, mut rounded) = (0, 0);
    for (name, t) in &f32s {
        assert_eq!(got[name].shape, t.shape, "{name}");
        for (i, (&ours, &x)) in got[name].data.iter().zip(&t.data).enumerate() {
            let want = round(x);
            assert_eq!(
                ours.to_bits(),
                want.to_bits(),
                "{name}[{i}]: imported {ours:e}, but {x:e} in half precision is {want:e}"
            );
            n += 1;
            rounded += usize::from(want != x);
        }
    }
    // an f32 value with random low mantissa bits is almost never exactly representable
    assert!(
        rounded > n * 9 / 10,
        "only {rounded} of {n} weights rounded"
    );
}

/// The half model's reference logits are its own: the f32 model's differ from them by far more
/// than the tolerance, so matching them shows the rounded weights were the ones used.
fn assert_distinct_from_f32(half: &Reference) {
    let f32s = read_reference("logits.json");
    assert_eq!(half.ids, f32s.ids);
    let shift = half
        .logits
        .iter()
        .zip(&f32s.logits)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        shift > 10.0 * super::TOLERANCE,
        "half rounding moved logits by {shift} only"
    );
}

#[test]
fn import_reads_sharded_bf16_safetensors() {
    assert_eq!(
        stored_dtypes("model_bf16_sharded"),
        BTreeSet::from([Dtype::BF16])
    );
    let index =
        crate::hf::read_json(&reference().join("model_bf16_sharded/model.safetensors.index.json"));
    let shards: BTreeSet<&str> = index["weight_map"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(shards.len(), 3, "{shards:?}");
    let want = read_reference("logits_bf16.json");
    assert_distinct_from_f32(&want);
    let d = crate::common::tmp_dir("hf-bf16-sharded");
    let hf = hf_dir(&d, "model_bf16_sharded");
    assert!(!hf.join("model.safetensors").exists());
    // through the binary, as a user runs it
    let got = imported_logits(&hf, &d.join("imported"), &want.ids);
    assert_close(&got, &want, "bf16 sharded");
    assert_widened_exactly(&imported_weights(&d.join("imported")), |x| {
        half::bf16::from_f32(x).to_f32()
    });
}

#[test]
fn import_widens_f16_to_f32_exactly() {
    assert_eq!(stored_dtypes("model_f16"), BTreeSet::from([Dtype::F16]));
    let want = read_reference("logits_f16.json");
    assert_distinct_from_f32(&want);
    let d = crate::common::tmp_dir("hf-f16");
    let hf = hf_dir(&d, "model_f16");
    let out = d.join("imported");
    rlhf::hf::import_hf(&hf, &out).unwrap();
    // bits first: flushing F16's 16 subnormal weights to zero moves the logits by only ~1e-4
    assert_widened_exactly(&imported_weights(&out), |x| half::f16::from_f32(x).to_f32());
    let lm = checkpoint::load_lm(&out, &burn::prelude::Device::flex()).unwrap();
    assert_close(&logits(&lm.model, &want.ids), &want, "f16");
}

/// `import_hf`'s error for the BF16 fixture after `spoil` changed its copy.
fn sharded_error(name: &str, spoil: impl FnOnce(&Path)) -> String {
    let d = crate::common::tmp_dir(name);
    let hf = hf_dir(&d, "model_bf16_sharded");
    spoil(&hf);
    let e = rlhf::hf::import_hf(&hf, &d.join("out")).unwrap_err();
    assert!(
        !d.join("out").exists(),
        "a failed import left {}",
        d.join("out").display()
    );
    format!("{e:#}")
}

/// Rewrites one shard with `edit` applied to its tensors (as f32: the dtype does not matter here).
fn edit_shard(hf: &Path, shard: &str, edit: impl FnOnce(&mut Vec<(String, HostTensor)>)) {
    let path = hf.join(shard);
    let mut tensors: Vec<_> = read_safetensors(&path).unwrap().into_iter().collect();
    edit(&mut tensors);
    write_safetensors(&tensors, &path).unwrap();
}

#[test]
fn sharded_import_errors_name_the_shard() {
    const S2: &str = "model-00002-of-00003.safetensors";
    // the index names a shard file that is not there
    let e = sharded_error("hf-shard-missing", |hf| {
        let index = hf.join("model.safetensors.index.json");
        let text = std::fs::read_to_string(&index).unwrap();
        let text = text.replace(S2, "model-00002-of-00004.safetensors");
        std::fs::write(&index, text).unwrap();
    });
    assert!(
        e.contains("model-00002-of-00004.safetensors does not exist")
            && e.contains("model.safetensors.index.json lists"),
        "{e}"
    );
    // a shard lacks a tensor the index lists in it
    let mut dropped = String::new();
    let e = sharded_error("hf-shard-lacks", |hf| {
        edit_shard(hf, S2, |t| dropped = t.remove(0).0);
    });
    assert!(
        e.contains(&format!(
            "{S2} lacks tensor '{dropped}' that model.safetensors.index.json lists"
        )),
        "{e}"
    );
    // a tensor in two shards: the index lists it in the first only
    const S1: &str = "model-00001-of-00003.safetensors";
    let mut copied = String::new();
    let e = sharded_error("hf-shard-extra", |hf| {
        let first = read_safetensors(&hf.join(S1)).unwrap();
        let (name, t) = first.into_iter().next().unwrap();
        copied = name.clone();
        edit_shard(hf, S2, |ts| ts.push((name, t)));
    });
    assert!(
        e.contains(&format!(
            "{S2} holds tensor '{copied}' that model.safetensors.index.json does not list"
        )),
        "{e}"
    );
}
