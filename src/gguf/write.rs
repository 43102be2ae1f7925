//! Writing a GGUF v3 file (little-endian): metadata in the order it was added, tensors from f32
//! values (stored as F32, F16 or Q8_0, quantised as ggml does) or from bytes already encoded in
//! any ggml type (a tensor copied from another file). The layout is the one gguf-py's
//! `GGUFWriter` writes: the data section and every tensor aligned to `general.alignment`
//! (default 32), zero padding, each tensor padded to the alignment, so a file read by
//! [`super::GgufFile`] and written back with the same metadata and tensors is the same bytes
//! (tests/gguf/file.rs checks this on a file gguf-py wrote).

use super::quant::{self, GgmlType};
use super::read::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};
use super::value::{Value, ValueType};
use anyhow::{bail, ensure, Context, Result};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

/// A tensor waiting to be written.
struct Pending {
    name: String,
    /// ggml order (row length first).
    ne: Vec<u64>,
    ggml_type: GgmlType,
    data: Vec<u8>,
}

/// Collects metadata and tensors, then writes them as one GGUF v3 file.
#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<Pending>,
    keys: HashSet<String>,
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metadata key. A key may appear once; every item of an array must have the array's
    /// element type; `general.alignment` must be a u32 power of two (it sets the alignment).
    pub fn add_metadata(&mut self, key: impl Into<String>, value: Value) -> Result<()> {
        let key = key.into();
        check_value(&value).with_context(|| format!("metadata key '{key}'"))?;
        if key == ALIGNMENT_KEY {
            ensure!(
                matches!(value, Value::U32(a) if a.is_power_of_two()),
                "{ALIGNMENT_KEY} must be a u32 power of two, got {value:?}"
            );
        }
        ensure!(
            self.keys.insert(key.clone()),
            "metadata key '{key}' added twice"
        );
        self.metadata.push((key, value));
        Ok(())
    }

    /// Adds a tensor of row-major `shape` (as PyTorch writes it) from f32 `values`, stored as
    /// `ggml_type`: F32, F16 or Q8_0 (whose rows must be whole 32-value blocks).
    pub fn add_tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        values: &[f32],
        ggml_type: GgmlType,
    ) -> Result<()> {
        let n: usize = shape.iter().product();
        ensure!(
            n == values.len(),
            "tensor '{name}': shape {shape:?} holds {n} values, got {}",
            values.len()
        );
        let ne: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        check_rows(name, &ne, ggml_type)?;
        let data =
            quant::quantize(ggml_type, values).with_context(|| format!("tensor '{name}'"))?;
        self.push(name, ne, ggml_type, data)
    }

    /// Adds a tensor whose bytes are already encoded as `ggml_type` (any type), with dimensions
    /// `ne` in ggml's order (row length first; [`super::TensorInfo::ne`]).
    pub fn add_raw_tensor(
        &mut self,
        name: &str,
        ne: &[u64],
        ggml_type: GgmlType,
        data: Vec<u8>,
    ) -> Result<()> {
        check_rows(name, ne, ggml_type)?;
        let blocks = ne.iter().product::<u64>() / ggml_type.block_size() as u64;
        let expected = blocks * ggml_type.type_size() as u64;
        ensure!(
            data.len() as u64 == expected,
            "tensor '{name}': {ne:?} of {ggml_type} is {expected} bytes, got {}",
            data.len()
        );
        self.push(name, ne.to_vec(), ggml_type, data)
    }

    fn push(&mut self, name: &str, ne: Vec<u64>, ggml_type: GgmlType, data: Vec<u8>) -> Result<()> {
        ensure!(
            self.tensors.iter().all(|t| t.name != name),
            "tensor '{name}' added twice"
        );
        let name = name.to_string();
        self.tensors.push(Pending {
            name,
            ne,
            ggml_type,
            data,
        });
        Ok(())
    }

    fn alignment(&self) -> u64 {
        self.metadata
            .iter()
            .find_map(|(k, v)| match v {
                Value::U32(a) if k == ALIGNMENT_KEY => Some(u64::from(*a)),
                _ => None,
            })
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// Writes the file to `out`.
    pub fn write_to(&self, out: &mut impl Write) -> Result<()> {
        let align = self.alignment();
        let mut w = Counting { out, pos: 0 };
        w.put(MAGIC)?;
        w.put(&3u32.to_le_bytes())?;
        w.put(&(self.tensors.len() as u64).to_le_bytes())?;
        w.put(&(self.metadata.len() as u64).to_le_bytes())?;
        for (key, value) in &self.metadata {
            w.string(key)?;
            w.put(&value.value_type().id().to_le_bytes())?;
            w.value(value)?;
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            w.string(&t.name)?;
            w.put(&(t.ne.len() as u32).to_le_bytes())?;
            for d in &t.ne {
                w.put(&d.to_le_bytes())?;
            }
            w.put(&t.ggml_type.id().to_le_bytes())?;
            w.put(&offset.to_le_bytes())?;
            offset = (offset + t.data.len() as u64).next_multiple_of(align);
        }
        w.pad(align)?;
        for t in &self.tensors {
            w.put(&t.data)?;
            w.pad(align)?;
        }
        Ok(())
    }

    /// Writes the file to `path` (through a temporary sibling renamed into place).
    pub fn write(&self, path: &Path) -> Result<()> {
        let tmp = crate::util::fs::tmp_path(path);
        let f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut buf = std::io::BufWriter::new(f);
        self.write_to(&mut buf)
            .and_then(|_| buf.flush().map_err(Into::into))
            .with_context(|| format!("writing {}", tmp.display()))?;
        drop(buf);
        crate::util::fs::rename(&tmp, path)
    }
}

/// 1 to 4 dimensions, rows a whole number of blocks.
fn check_rows(name: &str, ne: &[u64], ggml_type: GgmlType) -> Result<()> {
    ensure!(
        (1..=4).contains(&ne.len()),
        "tensor '{name}' has {} dimensions, expected 1 to 4",
        ne.len()
    );
    let bs = ggml_type.block_size() as u64;
    ensure!(
        ne[0].is_multiple_of(bs),
        "tensor '{name}': a row of {} values is not a whole number of {ggml_type} blocks ({bs})",
        ne[0]
    );
    Ok(())
}

/// Every array item has the array's element type, at every depth.
fn check_value(v: &Value) -> Result<()> {
    if let Value::Array(t, items) = v {
        for (i, x) in items.iter().enumerate() {
            if x.value_type() != *t {
                bail!("array of {t}: item {i} is {}", x.type_name());
            }
            check_value(x).with_context(|| format!("array item {i}"))?;
        }
    }
    Ok(())
}

/// A writer that counts the bytes written, for the padding.
struct Counting<'a, W: Write> {
    out: &'a mut W,
    pos: u64,
}

impl<W: Write> Counting<'_, W> {
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self, align: u64) -> Result<()> {
        let n = self.pos.next_multiple_of(align) - self.pos;
        self.put(&vec![0u8; n as usize])
    }

    fn string(&mut self, s: &str) -> Result<()> {
        self.put(&(s.len() as u64).to_le_bytes())?;
        self.put(s.as_bytes())
    }

    fn value(&mut self, v: &Value) -> Result<()> {
        match v {
            Value::U8(x) => self.put(&x.to_le_bytes()),
            Value::I8(x) => self.put(&x.to_le_bytes()),
            Value::U16(x) => self.put(&x.to_le_bytes()),
            Value::I16(x) => self.put(&x.to_le_bytes()),
            Value::U32(x) => self.put(&x.to_le_bytes()),
            Value::I32(x) => self.put(&x.to_le_bytes()),
            Value::F32(x) => self.put(&x.to_le_bytes()),
            Value::U64(x) => self.put(&x.to_le_bytes()),
            Value::I64(x) => self.put(&x.to_le_bytes()),
            Value::F64(x) => self.put(&x.to_le_bytes()),
            Value::Bool(x) => self.put(&[u8::from(*x)]),
            Value::String(s) => self.string(s),
            Value::Array(t, items) => {
                self.put(&t.id().to_le_bytes())?;
                self.put(&(items.len() as u64).to_le_bytes())?;
                items.iter().try_for_each(|x| self.value(x))
            }
        }
    }
}

/// An array value of `elem` items, e.g.
/// `array(ValueType::String, tokens.iter().map(|t| Value::String(t.to_string())))`.
pub fn array(elem: ValueType, items: impl IntoIterator<Item = Value>) -> Value {
    Value::Array(elem, items.into_iter().collect())
}
