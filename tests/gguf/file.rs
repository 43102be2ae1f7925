//! Files written by gguf-py's `GGUFWriter` read by ours (metadata of every value type, tensors
//! of every supported type, a non-default alignment, version 2), our writer giving gguf-py's
//! bytes for the same content, our own read -> write -> read round trip, and the typed getters.

use super::{assert_bits, assert_mentions, bits_of, ggml_type, json, message, reference};
use rlhf::gguf::{GgmlType, GgufFile, GgufWriter, TensorInfo, Value, ValueType};

/// A metadata value from the fixture's {"type", "value"} / {"type", "elem", "items"} form.
fn value_of(j: &serde_json::Value) -> Value {
    let v = &j["value"];
    let int = || v.as_i64().unwrap();
    match j["type"].as_str().unwrap() {
        "u8" => Value::U8(int() as u8),
        "i8" => Value::I8(int() as i8),
        "u16" => Value::U16(int() as u16),
        "i16" => Value::I16(int() as i16),
        "u32" => Value::U32(int() as u32),
        "i32" => Value::I32(int() as i32),
        "u64" => Value::U64(v.as_u64().unwrap()),
        "i64" => Value::I64(int()),
        // the fixture holds the f32 value widened to f64, which narrows back exactly
        "f32" => Value::F32(v.as_f64().unwrap() as f32),
        "f64" => Value::F64(v.as_f64().unwrap()),
        "bool" => Value::Bool(v.as_bool().unwrap()),
        "string" => Value::String(v.as_str().unwrap().to_string()),
        "array" => {
            let elem = j["elem"].as_str().unwrap();
            let elem = (0..13)
                .filter_map(ValueType::from_id)
                .find(|t| t.to_string() == elem)
                .unwrap();
            Value::Array(
                elem,
                j["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(value_of)
                    .collect(),
            )
        }
        t => panic!("unknown type {t}"),
    }
}

/// Every tensor of `doc_tensors` has its shape, type and gguf-py's dequantised values.
fn check_tensors(file: &GgufFile, doc_tensors: &serde_json::Value) {
    let doc_tensors = doc_tensors.as_array().unwrap();
    assert_eq!(file.tensors().len(), doc_tensors.len());
    for (info, t) in file.tensors().iter().zip(doc_tensors) {
        let name = t["name"].as_str().unwrap();
        let shape: Vec<usize> = serde_json::from_value(t["shape"].clone()).unwrap();
        assert_eq!(info.name, name);
        assert_eq!(
            info.ggml_type,
            ggml_type(t["type"].as_str().unwrap()),
            "{name}"
        );
        assert_eq!(info.shape(), shape, "{name}: shape");
        let ne: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        assert_eq!(info.ne, ne, "{name}: ne is the shape reversed");
        if let Some(expected) = t.get("expected") {
            let (s, values) = file.tensor_f32(name).unwrap();
            assert_eq!(s, shape, "{name}");
            assert_bits(&values, &bits_of(expected), name);
        }
    }
}

#[test]
fn gguf_py_file_metadata_reads_as_written() {
    let file = GgufFile::open(reference("tiny.gguf")).unwrap();
    assert_eq!((file.version(), file.alignment()), (3, 32));
    let doc = json("tiny.json");
    let expected: Vec<(String, Value)> = doc["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| (kv[0].as_str().unwrap().to_string(), value_of(&kv[1])))
        .collect();
    assert_eq!(file.metadata().len(), expected.len());
    for (got, want) in file.metadata().iter().zip(&expected) {
        assert_eq!(got, want);
    }
}

#[test]
fn gguf_py_file_tensors_dequantise_as_gguf_py() {
    let file = GgufFile::open(reference("tiny.gguf")).unwrap();
    check_tensors(&file, &json("tiny.json")["tensors"]);
    // a type we keep but cannot dequantise: its bytes read, its values are an error naming it
    assert_eq!(file.tensor_bytes("iq4_nl").unwrap().len(), 18);
    let msg = message(file.tensor_f32("iq4_nl"));
    assert_mentions(
        &msg,
        &[
            "tiny.gguf",
            "'iq4_nl'",
            "dequantising IQ4_NL is not supported",
        ],
    );
    assert_mentions(
        &message(file.tensor_f32("nope")),
        &["tiny.gguf: no tensor 'nope'"],
    );
}

#[test]
fn general_alignment_places_the_data_section() {
    // the script padded the header so that aligning to 32 instead of 64 misplaces every tensor
    let file = GgufFile::open(reference("tiny_align64.gguf")).unwrap();
    assert_eq!(file.alignment(), 64);
    assert_eq!(file.data_offset() % 64, 0);
    check_tensors(&file, &json("tiny.json")["align64"]["tensors"]);
}

#[test]
fn version_2_reads_as_version_3() {
    // v2 and v3 share the little-endian layout (v3 only allowed big-endian files)
    let mut bytes = std::fs::read(reference("tiny.gguf")).unwrap();
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    let v2 = GgufFile::from_bytes("tiny-v2", bytes).unwrap();
    assert_eq!(v2.version(), 2);
    let v3 = GgufFile::open(reference("tiny.gguf")).unwrap();
    assert_eq!(v2.metadata(), v3.metadata());
    check_tensors(&v2, &json("tiny.json")["tensors"]);
}

/// A writer holding `file`'s metadata and tensors (raw bytes), in file order.
fn copy_of(file: &GgufFile) -> GgufWriter {
    let mut w = GgufWriter::new();
    for (k, v) in file.metadata() {
        w.add_metadata(k.as_str(), v.clone()).unwrap();
    }
    for t in file.tensors() {
        let bytes = file.tensor_bytes(&t.name).unwrap();
        w.add_raw_tensor(&t.name, &t.ne, t.ggml_type, bytes)
            .unwrap();
    }
    w
}

fn bytes_of(w: &GgufWriter) -> Vec<u8> {
    let mut out = Vec::new();
    w.write_to(&mut out).unwrap();
    out
}

#[test]
fn writer_gives_gguf_py_bytes() {
    for name in ["tiny.gguf", "tiny_align64.gguf"] {
        let file = GgufFile::open(reference(name)).unwrap();
        let ours = bytes_of(&copy_of(&file));
        let theirs = std::fs::read(reference(name)).unwrap();
        let first = ours.iter().zip(&theirs).position(|(a, b)| a != b);
        assert!(
            ours == theirs,
            "{name}: lengths {} vs {}, first difference at {first:?}",
            ours.len(),
            theirs.len()
        );
    }
}

/// Our writer from f32 values (F32, F16, Q8_0 of every rank), metadata of every type, read back
/// by our reader; then written again from what was read: the same bytes.
#[test]
fn ours_round_trips() {
    let x: Vec<f32> = (0..2 * 3 * 64)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
        .collect();
    let mut w = GgufWriter::new();
    let doc = json("tiny.json");
    for kv in doc["metadata"].as_array().unwrap() {
        w.add_metadata(kv[0].as_str().unwrap(), value_of(&kv[1]))
            .unwrap();
    }
    w.add_tensor("a.f32", &[2, 3, 64], &x, GgmlType::F32)
        .unwrap();
    w.add_tensor("b.f16", &[6, 64], &x, GgmlType::F16).unwrap();
    w.add_tensor("c.q8_0", &[384], &x, GgmlType::Q8_0).unwrap();
    w.add_tensor("d.scalar", &[1], &[0.25], GgmlType::F32)
        .unwrap();
    let path = std::env::temp_dir().join(format!("rlhf-gguf-{}.gguf", std::process::id()));
    w.write(&path).unwrap();
    let file = GgufFile::open(&path).unwrap();
    assert!(
        !rlhf::util::fs::tmp_path(&path).exists(),
        "the temporary file is left"
    );
    let want: Vec<(String, Value)> = doc["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| (kv[0].as_str().unwrap().to_string(), value_of(&kv[1])))
        .collect();
    assert_eq!(file.metadata(), &want[..]);
    let info = |n: &str| file.tensor(n).unwrap().clone();
    assert_eq!(
        info("a.f32"),
        TensorInfo {
            name: "a.f32".into(),
            ne: vec![64, 3, 2],
            ggml_type: GgmlType::F32,
            offset: 0
        }
    );
    let (shape, a) = file.tensor_f32("a.f32").unwrap();
    assert_eq!((shape, a), (vec![2, 3, 64], x.clone()));
    let (shape, b) = file.tensor_f32("b.f16").unwrap();
    let x16: Vec<f32> = x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    assert_eq!((shape, b), (vec![6, 64], x16));
    let (shape, c) = file.tensor_f32("c.q8_0").unwrap();
    let q = rlhf::gguf::quant::quantize(GgmlType::Q8_0, &x).unwrap();
    let xq = rlhf::gguf::quant::dequantize(GgmlType::Q8_0, &q).unwrap();
    assert_eq!((shape, c), (vec![384], xq));
    assert_eq!(file.tensor_f32("d.scalar").unwrap(), (vec![1], vec![0.25]));
    assert!(bytes_of(&copy_of(&file)) == std::fs::read(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn writer_refuses_what_it_cannot_write() {
    let mut w = GgufWriter::new();
    w.add_metadata("k", Value::U32(1)).unwrap();
    assert_mentions(
        &message(w.add_metadata("k", Value::U8(1))),
        &["'k' added twice"],
    );
    let mixed = Value::Array(ValueType::U32, vec![Value::U32(1), Value::I32(2)]);
    assert_mentions(
        &message(w.add_metadata("m", mixed)),
        &["'m'", "item 1 is i32"],
    );
    let bad = Value::U32(48);
    let msg = message(w.add_metadata("general.alignment", bad));
    assert_mentions(&msg, &["general.alignment must be a u32 power of two"]);
    let msg = message(w.add_tensor("t", &[2, 3], &[0.0; 5], GgmlType::F32));
    assert_mentions(&msg, &["'t'", "[2, 3] holds 6 values, got 5"]);
    let msg = message(w.add_tensor("t", &[2, 48], &[0.0; 96], GgmlType::Q8_0));
    assert_mentions(
        &msg,
        &["a row of 48 values is not a whole number of Q8_0 blocks"],
    );
    let msg = message(w.add_raw_tensor("r", &[256], GgmlType::Q4_K, vec![0; 143]));
    assert_mentions(&msg, &["'r'", "is 144 bytes, got 143"]);
    w.add_tensor("t", &[32], &[0.0; 32], GgmlType::Q8_0)
        .unwrap();
    let msg = message(w.add_tensor("t", &[32], &[0.0; 32], GgmlType::F32));
    assert_mentions(&msg, &["tensor 't' added twice"]);
}

#[test]
fn getters_convert_or_say_what_is_wrong() {
    let f = GgufFile::open(reference("tiny.gguf")).unwrap();
    assert_eq!(f.get_u32("test.u32").unwrap(), 4_000_000_000);
    assert_eq!(f.get_u64("test.u64").unwrap(), (1 << 63) + 5);
    assert_eq!(f.get::<i64>("test.i8").unwrap(), -100);
    assert_eq!(
        f.get_f32("test.f32").unwrap(),
        "3.14159265".parse::<f32>().unwrap()
    );
    assert!(f.get_bool("test.bool_true").unwrap());
    assert_eq!(
        f.get_str("test.string").unwrap(),
        "h\u{e9}llo \u{2713} \u{1f980}"
    );
    assert_eq!(
        f.get_str_array("test.array.string").unwrap(),
        ["a", "", "<|im_start|>"]
    );
    assert_eq!(
        f.get::<Vec<Vec<i32>>>("test.array.nested").unwrap(),
        [vec![1, 2], vec![3]]
    );
    assert_eq!(f.get_opt::<u32>("nope").unwrap(), None);
    let name = reference("tiny.gguf").display().to_string();
    let msg = message(f.get_u32("nope"));
    assert_eq!(msg, format!("{name}: no metadata key 'nope'"));
    let msg = message(f.get_u32("test.string"));
    assert_eq!(
        msg,
        format!("{name}: metadata key 'test.string' is string, expected an integer (read as u32)")
    );
    let msg = message(f.get_opt::<u32>("test.i32"));
    assert_mentions(
        &msg,
        &["'test.i32' is -2000000000, out of the range of u32"],
    );
    assert_mentions(
        &message(f.get_f32("test.f64")),
        &["'test.f64' is f64, expected f32"],
    );
    let msg = message(f.get_str_array("test.array.i32"));
    assert_mentions(&msg, &["'test.array.i32' item 0 is i32, expected string"]);
}
