//! Broken GGUF files give errors that name the file, the offset and the key or tensor, and
//! never a panic: truncation at every byte, a bad magic, unsupported versions, unknown type
//! ids, tensors outside the file, impossible counts and sizes, and random corruption.

use super::{assert_mentions, message, reference};
use proptest::prelude::*;
use rlhf::gguf::{GgmlType, GgufFile, GgufWriter, Value, ValueType};

/// Our writer's bytes for `metadata` and one F32 tensor "t" of 8 values (or none).
fn file_with(metadata: &[(&str, Value)], tensor: bool) -> Vec<u8> {
    let mut w = GgufWriter::new();
    for (k, v) in metadata {
        w.add_metadata(*k, v.clone()).unwrap();
    }
    if tensor {
        w.add_tensor("t", &[8], &[1.0; 8], GgmlType::F32).unwrap();
    }
    let mut out = Vec::new();
    w.write_to(&mut out).unwrap();
    out
}

/// Key "a" = u32 7 and tensor "t". Offsets: 0 magic, 4 version, 8 tensor count, 16 key count,
/// 24 key length, 32 "a", 33 value type, 37 value, 41 name length, 49 "t", 50 n_dims,
/// 54 ne[0], 62 ggml type, 66 data offset, 74..96 padding, 96..128 data.
fn small() -> Vec<u8> {
    let b = file_with(&[("a", Value::U32(7))], true);
    assert_eq!(
        (b.len(), &b[32..33], &b[49..50]),
        (128, &b"a"[..], &b"t"[..])
    );
    b
}

fn patched(at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut b = small();
    b[at..at + bytes.len()].copy_from_slice(bytes);
    b
}

fn error_of(bytes: Vec<u8>) -> String {
    message(GgufFile::from_bytes("small", bytes))
}

#[test]
fn the_small_file_is_well_formed() {
    let f = GgufFile::from_bytes("small", small()).unwrap();
    assert_eq!(f.get_u32("a").unwrap(), 7);
    assert_eq!(f.tensor_f32("t").unwrap(), (vec![8], vec![1.0; 8]));
}

#[test]
fn header_errors() {
    let msg = error_of(patched(0, b"GGML"));
    assert_eq!(
        msg,
        "reading GGUF file small: not a GGUF file: it starts with \"GGML\", expected \"GGUF\""
    );
    let msg = error_of(patched(4, &1u32.to_le_bytes()));
    assert_mentions(
        &msg,
        &["small", "unsupported GGUF version 1 (supported: 2 and 3)"],
    );
    let msg = error_of(patched(4, &4u32.to_le_bytes()));
    assert_mentions(&msg, &["unsupported GGUF version 4"]);
    let msg = message(GgufFile::open(reference("big_endian.gguf")));
    assert_mentions(
        &msg,
        &[
            "big_endian.gguf",
            "a big-endian file, which is not supported",
        ],
    );
    let msg = message(GgufFile::open("/nonexistent/model.gguf"));
    assert_mentions(&msg, &["opening /nonexistent/model.gguf"]);
    assert_mentions(
        &error_of(vec![]),
        &["truncated: the magic at offset 0 needs 4 bytes"],
    );
}

#[test]
fn metadata_errors() {
    let msg = error_of(patched(33, &13u32.to_le_bytes()));
    assert_mentions(&msg, &["key 'a'", "unknown value type id 13 at offset 33"]);
    let msg = error_of(patched(32, &[0xFF]));
    assert_mentions(
        &msg,
        &[
            "metadata #0",
            "a metadata key at offset 32 is not valid UTF-8",
        ],
    );
    let msg = error_of(patched(24, &(1u64 << 40).to_le_bytes()));
    assert_mentions(
        &msg,
        &["truncated: a metadata key at offset 32 needs 1099511627776 bytes"],
    );
    let mut b = file_with(&[("a", Value::Bool(true))], false);
    b[37] = 2;
    let msg = error_of(b);
    assert_mentions(
        &msg,
        &["key 'a'", "a bool at offset 37 is 2, expected 0 or 1"],
    );
    // an array of u8 claiming 2^62 items: refused before anything is allocated for them
    let arr = Value::Array(ValueType::U8, vec![Value::U8(1); 3]);
    let mut b = file_with(&[("a", arr)], false);
    b[41..49].copy_from_slice(&(1u64 << 62).to_le_bytes());
    let msg = error_of(b);
    assert_mentions(
        &msg,
        &["key 'a'", "truncated: an array of 4611686018427387904 u8"],
    );
    let mut deep = Value::U8(0);
    for _ in 0..9 {
        deep = Value::Array(deep.value_type(), vec![deep]);
    }
    let msg = error_of(file_with(&[("a", deep)], false));
    assert_mentions(&msg, &["key 'a'", "arrays nested deeper than 8"]);
    // key "a" (u8) at 24..38, then key "b": length at 38, name at 46
    let mut b = file_with(&[("a", Value::U8(1)), ("b", Value::U8(2))], false);
    assert_eq!(&b[46..47], b"b");
    b[46] = b'a';
    assert_mentions(&error_of(b), &["metadata key 'a' appears twice"]);
    // "general.alignment" at 32..49, its type at 49, its value at 53
    let mut b = file_with(&[("general.alignment", Value::U32(32))], false);
    b[53..57].copy_from_slice(&48u32.to_le_bytes());
    let msg = error_of(b);
    assert_mentions(
        &msg,
        &["general.alignment is U32(48), expected a u32 power of two"],
    );
}

#[test]
fn tensor_info_errors() {
    let msg = error_of(patched(62, &99u32.to_le_bytes()));
    assert_mentions(
        &msg,
        &[
            "tensor info #0",
            "tensor 't' has unknown ggml type id 99 (at 62)",
        ],
    );
    let msg = error_of(patched(50, &5u32.to_le_bytes()));
    assert_mentions(&msg, &["tensor 't' has 5 dimensions, expected 1 to 4"]);
    let msg = error_of(patched(66, &32u64.to_le_bytes()));
    assert_mentions(
        &msg,
        &[
            "tensor 't' (32 bytes at offset 32 of the data section, which starts at 96) runs past \
           the end of the file (128 bytes)",
        ],
    );
    let msg = error_of(patched(66, &16u64.to_le_bytes()));
    assert_mentions(
        &msg,
        &["tensor 't': offset 16 is not a multiple of the alignment 32"],
    );
    let msg = error_of(patched(54, &u64::MAX.to_le_bytes()));
    assert_mentions(
        &msg,
        &["tensor 't': dimensions [18446744073709551615] overflow"],
    );
    let msg = error_of(patched(54, &(1u64 << 40).to_le_bytes()));
    assert_mentions(
        &msg,
        &["tensor 't' (4398046511104 bytes", "runs past the end"],
    );
    // F32 -> Q8_0 (id 8): a row of 8 values is not a whole block of 32
    let msg = error_of(patched(62, &8u32.to_le_bytes()));
    assert_mentions(
        &msg,
        &["a row of 8 values is not a whole number of Q8_0 blocks (32 values)"],
    );
}

/// Every proper prefix of a file that ends inside a tensor's data is an error (truncated
/// header or a tensor past the end); a prefix holding all tensors reads.
#[test]
fn truncation_at_every_byte() {
    let bytes = std::fs::read(reference("tiny.gguf")).unwrap();
    let full = GgufFile::from_bytes("tiny", bytes.clone()).unwrap();
    let end = full
        .tensors()
        .iter()
        .map(|t| full.data_offset() + t.offset + t.n_bytes())
        .max()
        .unwrap() as usize;
    for n in 0..bytes.len() {
        let r = GgufFile::from_bytes("tiny", bytes[..n].to_vec());
        if n < end {
            let msg = message(r);
            assert!(
                msg.contains("truncated:") || msg.contains("runs past the end of the file"),
                "cut at {n}: {msg}"
            );
        } else {
            assert!(r.is_ok(), "cut at {n} (after the last tensor at {end})");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Random corruption (bytes overwritten, the file cut) opens or fails; a file that opens
    /// reads every tensor or fails; nothing panics or allocates without bound.
    #[test]
    fn corruption_never_panics(
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let mut bytes = std::fs::read(reference("tiny.gguf")).unwrap();
        let n = bytes.len();
        for (at, v) in flips {
            bytes[at % n] = v;
        }
        // half the cases keep the whole file
        bytes.truncate(if cut % 2 == 0 { n } else { cut % n });
        if let Ok(f) = GgufFile::from_bytes("fuzz", bytes) {
            for t in f.tensors() {
                let _ = f.tensor_f32(&t.name);
            }
        }
    }
}
