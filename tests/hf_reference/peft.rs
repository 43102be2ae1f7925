//! LoRA adapters against Hugging Face PEFT itself: adapters PEFT made and saved on the tiny
//! Llama and GPT-2 fixtures (`make_peft_reference.py`, `peft/`), read by `rlhf import-peft`
//! onto the imported bases, must give the logits PEFT computed; `rlhf export-peft` of what was
//! read must write back PEFT's very file (names, shapes, bytes of every value) and the settings
//! of its `adapter_config.json`. A round trip through our own code alone would pass with A and
//! B transposed the same wrong way both ways; PEFT's logits would not.

use super::llama::{col, flat};
use super::{hf_dir, logits, max_diff, read_json, reference, run_ok, TOLERANCE};
use rlhf::checkpoint;
use rlhf::hf::weights::{read_safetensors, write_safetensors};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The PEFT fixture of `family` and the `transformers` fixture it adapts.
fn base_fixture(family: &str) -> &'static str {
    match family {
        "llama" => "llama/llama",
        _ => "model",
    }
}

/// A copy of PEFT's adapter directory for `family`, to alter.
fn adapter_copy(family: &str, d: &Path) -> PathBuf {
    let to = d.join("adapter");
    crate::fixtures::copy_dir(&reference().join(format!("peft/{family}")), &to);
    to
}

/// `import-hf` of the family's base: the base checkpoint in `d`.
fn base_ckpt(family: &str, d: &Path) -> PathBuf {
    let hf = hf_dir(d, base_fixture(family));
    let base = d.join("base");
    run_ok(&["import-hf", "--dir"], &[&hf, Path::new("--out"), &base]);
    base
}

fn rlhf_err(args: &[&str], paths: &[&Path]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .args(args)
        .args(paths)
        .output()
        .unwrap();
    assert!(!o.status.success(), "rlhf {args:?} succeeded");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn import_peft(adapter: &Path, base: &Path, out: &Path) {
    run_ok(
        &["import-peft", "--adapter"],
        &[adapter, Path::new("--base"), base, Path::new("--out"), out],
    );
}

fn import_peft_err(adapter: &Path, base: &Path, out: &Path) -> String {
    rlhf_err(
        &["import-peft", "--adapter"],
        &[adapter, Path::new("--base"), base, Path::new("--out"), out],
    )
}

/// Reads PEFT's adapter for `family`, checks our logits against PEFT's, exports it again and
/// checks the file and settings against PEFT's.
fn check_family(family: &str) {
    let want = read_json(&reference().join(format!("peft/{family}/logits.json")));
    let ids: Vec<i64> = col(&want["ids"], |x| x.as_i64().unwrap());
    // the adapters matter: a reader that dropped them would be this far off
    assert!(want["base_shift"].as_f64().unwrap() > 0.5);
    let d = crate::common::tmp_dir(&format!("peft-{family}"));
    let base = base_ckpt(family, &d);
    let lora = d.join("lora");
    import_peft(&reference().join(format!("peft/{family}")), &base, &lora);
    let m = checkpoint::load_lm(&lora, &burn::prelude::Device::flex()).unwrap();
    assert_eq!((m.config.lora.as_ref().unwrap().lora.rank), 4);
    assert_eq!((m.config.lora.as_ref().unwrap().lora.alpha), 8.0);
    let got = logits(&m.model, &ids);
    let v = crate::common::tok().vocab_size();
    let (diff, (pos, tok)) = max_diff(&got, &flat(&want["logits"]), v);
    eprintln!("{family}: max |ours - PEFT| = {diff:.2e} at ({pos}, {tok})");
    assert!(
        diff < TOLERANCE,
        "{family}: logits differ from PEFT's by {diff} at ({pos}, {tok})"
    );

    let out = d.join("exported");
    run_ok(
        &["export-peft", "--ckpt"],
        &[&lora, Path::new("--out"), &out],
    );
    same_tensors(
        &reference().join(format!("peft/{family}/adapter_model.safetensors")),
        &out.join("adapter_model.safetensors"),
    );
    same_settings(
        &read_json(&reference().join(format!("peft/{family}/adapter_config.json"))),
        &read_json(&out.join("adapter_config.json")),
    );
}

/// The same tensor names and shapes, and every value the same bytes.
fn same_tensors(theirs: &Path, ours: &Path) {
    let (theirs, ours) = (
        read_safetensors(theirs).unwrap(),
        read_safetensors(ours).unwrap(),
    );
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (name, t) in &theirs {
        assert_eq!(ours[name].shape, t.shape, "{name}");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(
            bits(&ours[name].data) == bits(&t.data),
            "{name}: values changed"
        );
    }
}

/// The settings that decide what the adapter computes and where it goes.
fn same_settings(theirs: &serde_json::Value, ours: &serde_json::Value) {
    for k in [
        "peft_type",
        "task_type",
        "r",
        "lora_alpha",
        "lora_dropout",
        "fan_in_fan_out",
        "bias",
        "use_rslora",
        "use_dora",
        "modules_to_save",
        "inference_mode",
    ] {
        assert_eq!(ours[k], theirs[k], "adapter_config.json: {k}");
    }
    // PEFT saves target_modules from a set, in no fixed order
    let sorted = |v: &serde_json::Value| {
        let mut t = col(v, |x| x.as_str().unwrap().to_string());
        t.sort();
        t
    };
    assert_eq!(
        sorted(&ours["target_modules"]),
        sorted(&theirs["target_modules"])
    );
}

#[test]
fn llama_peft_adapter_reads_with_peft_logits_and_exports_back_unchanged() {
    check_family("llama");
}

#[test]
fn gpt2_peft_adapter_on_conv1d_reads_with_peft_logits_and_exports_back_unchanged() {
    check_family("gpt2");
}

/// What the format cannot carry, or a file that is not what it claims, is refused by name.
#[test]
fn export_and_import_peft_refuse_what_they_cannot_represent() {
    let d = crate::common::tmp_dir("peft-refusals");
    let base = base_ckpt("llama", &d);
    let err = rlhf_err(
        &["export-peft", "--ckpt"],
        &[&base, Path::new("--out"), &d.join("x")],
    );
    assert!(
        err.contains("is a full model, not a LoRA checkpoint"),
        "{err}"
    );

    // a reward model's head has no place in a causal-LM adapter
    let lora = d.join("lora");
    import_peft(&reference().join("peft/llama"), &base, &lora);
    let cfg_path = lora.join("config.json");
    let mut cfg = read_json(&cfg_path);
    cfg["kind"] = "rm".into();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let err = rlhf_err(
        &["export-peft", "--ckpt"],
        &[&lora, Path::new("--out"), &d.join("x")],
    );
    assert!(err.contains("is a reward (or value) model"), "{err}");

    // DoRA, and a LoRA checkpoint as the base
    let adapter = adapter_copy("llama", &d);
    let acfg = adapter.join("adapter_config.json");
    let mut c = read_json(&acfg);
    c["use_dora"] = true.into();
    std::fs::write(&acfg, c.to_string()).unwrap();
    let err = import_peft_err(&adapter, &base, &d.join("y"));
    assert!(err.contains("DoRA"), "{err}");
    let err = import_peft_err(&reference().join("peft/llama"), &lora, &d.join("y"));
    assert!(err.contains("cannot be a base"), "{err}");
}

/// Tensors missing, in torch's layout the wrong way round, or for another model.
#[test]
fn import_peft_names_the_tensor_it_cannot_place() {
    let d = crate::common::tmp_dir("peft-tensors");
    let base = base_ckpt("llama", &d);
    let adapter = adapter_copy("llama", &d);
    let file = adapter.join("adapter_model.safetensors");
    let theirs = read_safetensors(&file).unwrap();
    let q1 = "base_model.model.model.layers.1.self_attn.q_proj";

    let fewer: Vec<_> = theirs
        .clone()
        .into_iter()
        .filter(|(n, _)| !n.starts_with(q1))
        .collect();
    write_safetensors(&fewer, &file).unwrap();
    let err = import_peft_err(&adapter, &base, &d.join("a"));
    assert!(
        err.contains("no adapter for model.layers.1.self_attn.q_proj"),
        "{err}"
    );

    // gate_proj's A is (4, 32): transposed, (32, 4), it fits no adapter
    let gate_a = "base_model.model.model.layers.0.mlp.gate_proj.lora_A.weight";
    let mut flipped: Vec<_> = theirs.clone().into_iter().collect();
    let t = flipped.iter_mut().find(|(n, _)| n == gate_a).unwrap();
    t.1 = t.1.transposed().unwrap();
    write_safetensors(&flipped, &file).unwrap();
    let err = import_peft_err(&adapter, &base, &d.join("b"));
    assert!(err.contains(gate_a) && err.contains("shape"), "{err}");

    // GPT-2's adapter on the Llama base
    let gpt2 = reference().join("peft/gpt2");
    let err = import_peft_err(&gpt2, &base, &d.join("c"));
    assert!(err.contains("no tensor names an adapter"), "{err}");
}
