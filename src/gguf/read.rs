//! Reading a GGUF file (llama.cpp's model format, versions 2 and 3, little-endian): the header,
//! the metadata (every value type, arrays nested), the tensor infos, and a tensor's data
//! dequantised to f32 in the row-major shape PyTorch and safetensors use.
//!
//! Layout (ggml's `docs/gguf.md`): magic `GGUF`, version (u32), tensor count (u64), metadata
//! count (u64); the metadata as (key string, type id u32, value); the tensor infos as (name,
//! n_dims u32, ne[n_dims] u64, ggml type id u32, offset u64); padding to `general.alignment`
//! (default 32); the data section, where each tensor starts at its offset (a multiple of the
//! alignment). A string is a u64 byte length and UTF-8 bytes; an array an element type id
//! (u32), a u64 count and the items.
//!
//! Opening reads only the header, metadata and tensor infos (a few MB even for a large model);
//! a tensor's bytes are read when it is asked for. Any input gives a value or an error naming the
//! file, the byte offset, and the key or tensor concerned; nothing is allocated from a count
//! before the bytes it needs are known to be there.

use super::quant::{self, GgmlType};
use super::value::{FromValue, Value, ValueType};
use anyhow::{anyhow, bail, ensure, Context, Result};
use std::collections::HashMap;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The four bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// The alignment of the data section and of every tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that sets the alignment (a u32, a power of two).
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;
/// Arrays nested deeper than this are refused (real files nest none; an unbounded depth would
/// let a small file overflow the stack).
const MAX_ARRAY_DEPTH: usize = 8;

/// Where a tensor is and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// The dimensions in ggml's order: `ne[0]` is the fastest-varying (the length of a row), so
    /// a PyTorch `(out, in)` weight has `ne = [in, out]`. [`TensorInfo::shape`] reverses it.
    pub ne: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Byte offset of the data from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// The shape in row-major order as PyTorch and safetensors write it: `ne` reversed
    /// (`token_embd.weight`, `ne = [576, 49152]`, has shape `[49152, 576]`).
    pub fn shape(&self) -> Vec<usize> {
        self.ne.iter().rev().map(|&n| n as usize).collect()
    }

    /// Number of values.
    pub fn n_elements(&self) -> u64 {
        self.ne.iter().product()
    }

    /// Bytes of data: a row of `ne[0]` values is `ne[0] / block_size` blocks.
    pub fn n_bytes(&self) -> u64 {
        let t = self.ggml_type;
        self.n_elements() / t.block_size() as u64 * t.type_size() as u64
    }
}

enum Source {
    File(PathBuf),
    Memory(Vec<u8>),
}

/// An opened GGUF file: its metadata and tensor infos in memory, the tensor data read on demand.
pub struct GgufFile {
    /// The path, or the name given to [`GgufFile::from_bytes`], for messages.
    name: String,
    source: Source,
    version: u32,
    alignment: u64,
    /// Absolute offset of the data section.
    data_offset: u64,
    /// In file order.
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl GgufFile {
    /// Opens `path`: reads and checks the header, metadata and tensor infos (every tensor must lie
    /// inside the file).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let f = std::fs::File::open(path).with_context(|| format!("opening {name}"))?;
        let len = f
            .metadata()
            .with_context(|| format!("reading the size of {name}"))?
            .len();
        let source = Source::File(path.to_path_buf());
        parse(BufReader::new(f), len, name.clone(), source)
            .with_context(|| format!("reading GGUF file {name}"))
    }

    /// Reads a GGUF file held in memory; `name` stands for it in messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self> {
        let len = bytes.len() as u64;
        let mut file = parse(
            &bytes[..],
            len,
            name.to_string(),
            Source::Memory(Vec::new()),
        )
        .with_context(|| format!("reading GGUF file {name}"))?;
        file.source = Source::Memory(bytes);
        Ok(file)
    }

    /// The path or name of the file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The alignment of the data section and the tensors.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute byte offset of the data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Every metadata key and value, in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The value of `key`, if present.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// The value of `key` as `T`; errors name the file and the key, and say whether the key is
    /// missing or holds another type (see [`FromValue`] for the conversions).
    pub fn get<'a, T: FromValue<'a>>(&'a self, key: &str) -> Result<T> {
        self.get_opt(key)?
            .ok_or_else(|| anyhow!("{}: no metadata key '{key}'", self.name))
    }

    /// As [`GgufFile::get`], with `None` for a missing key (a wrong type is still an error).
    pub fn get_opt<'a, T: FromValue<'a>>(&'a self, key: &str) -> Result<Option<T>> {
        let Some(v) = self.value(key) else {
            return Ok(None);
        };
        T::from_value(v)
            .map(Some)
            .map_err(|e| anyhow!("{}: metadata key '{key}' {e}", self.name))
    }

    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.get(key)
    }

    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.get(key)
    }

    pub fn get_f32(&self, key: &str) -> Result<f32> {
        self.get(key)
    }

    pub fn get_bool(&self, key: &str) -> Result<bool> {
        self.get(key)
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.get(key)
    }

    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>> {
        self.get(key)
    }

    /// Every tensor, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor_index
            .get(name)
            .map(|&i| &self.tensors[i])
            .ok_or_else(|| anyhow!("{}: no tensor '{name}'", self.name))
    }

    /// The raw bytes of tensor `name` as stored (blocks of its ggml type).
    pub fn tensor_bytes(&self, name: &str) -> Result<Vec<u8>> {
        let t = self.tensor(name)?;
        let start = self.data_offset + t.offset;
        let n = t.n_bytes();
        let what = || {
            format!(
                "{}: reading tensor '{name}' ({n} bytes at {start})",
                self.name
            )
        };
        match &self.source {
            Source::Memory(b) => Ok(b[start as usize..(start + n) as usize].to_vec()),
            Source::File(path) => {
                let mut f = std::fs::File::open(path).with_context(what)?;
                f.seek(SeekFrom::Start(start)).with_context(what)?;
                let mut buf = vec![0u8; n as usize];
                f.read_exact(&mut buf).with_context(what)?;
                Ok(buf)
            }
        }
    }

    /// Tensor `name` dequantised to f32: (shape, values), the shape row-major as PyTorch writes
    /// it (GGUF's `ne` reversed, see [`TensorInfo::shape`]) and the values in that order.
    /// A type [`GgmlType::can_dequantize`] refuses is an error naming it.
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = self.tensor(name)?;
        let bytes = self.tensor_bytes(name)?;
        let values = quant::dequantize(t.ggml_type, &bytes)
            .with_context(|| format!("{}: tensor '{name}'", self.name))?;
        Ok((t.shape(), values))
    }
}

/// Reads little-endian values, keeping the offset and the file length for bounds and messages.
struct Parser<R> {
    r: R,
    pos: u64,
    len: u64,
}

impl<R: Read> Parser<R> {
    /// Reads `n` bytes, or fails saying what needed them, where, and how many were left.
    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        let left = self.len - self.pos;
        if n > left {
            bail!(
                "truncated: {what} at offset {} needs {n} bytes, the file has {left} left",
                self.pos
            );
        }
        let mut buf = vec![0u8; n as usize];
        self.r
            .read_exact(&mut buf)
            .with_context(|| format!("reading {what} at offset {}", self.pos))?;
        self.pos += n;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let b = self.bytes(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&b);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.u64(&format!("the length of {what}"))?;
        let at = self.pos;
        let b = self.bytes(n, what)?;
        String::from_utf8(b).map_err(|_| anyhow!("{what} at offset {at} is not valid UTF-8"))
    }

    fn value_type(&mut self, what: &str) -> Result<ValueType> {
        let at = self.pos;
        let id = self.u32(what)?;
        ValueType::from_id(id)
            .ok_or_else(|| anyhow!("unknown value type id {id} at offset {at} ({what})"))
    }

    /// One value of type `ty`; `depth` counts the arrays around it.
    fn value(&mut self, ty: ValueType, depth: usize) -> Result<Value> {
        let w = "the value";
        Ok(match ty {
            ValueType::U8 => Value::U8(u8::from_le_bytes(self.array(w)?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(w)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(w)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(w)?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array(w)?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(w)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(w)?)),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array(w)?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(w)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(w)?)),
            ValueType::Bool => {
                let at = self.pos;
                match self.array::<1>(w)?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    b => bail!("a bool at offset {at} is {b}, expected 0 or 1"),
                }
            }
            ValueType::String => Value::String(self.string("the string")?),
            ValueType::Array => self.array_value(depth)?,
        })
    }

    fn array_value(&mut self, depth: usize) -> Result<Value> {
        if depth >= MAX_ARRAY_DEPTH {
            bail!(
                "arrays nested deeper than {MAX_ARRAY_DEPTH} at offset {}",
                self.pos
            );
        }
        let elem = self.value_type("the array's element type")?;
        let at = self.pos;
        let count = self.u64("the array's length")?;
        let left = self.len - self.pos;
        if count.checked_mul(elem.min_size()).is_none_or(|n| n > left) {
            bail!(
                "truncated: an array of {count} {elem} at offset {at} needs at least {} bytes \
                 each, the file has {left} left",
                elem.min_size()
            );
        }
        let items = (0..count)
            .map(|i| {
                self.value(elem, depth + 1)
                    .with_context(|| format!("array item {i}"))
            })
            .collect::<Result<_>>()?;
        Ok(Value::Array(elem, items))
    }

    /// One tensor info (name, dims, type, offset), checked: 1..=4 dims, a known type, rows a
    /// whole number of blocks, a size that fits in 64 bits.
    fn tensor_info(&mut self) -> Result<TensorInfo> {
        let name = self.string("the tensor name")?;
        let n_dims = self.u32("the number of dimensions")?;
        ensure!(
            (1..=MAX_DIMS).contains(&n_dims),
            "tensor '{name}' has {n_dims} dimensions, expected 1 to {MAX_DIMS}"
        );
        let ne = (0..n_dims)
            .map(|_| self.u64("a dimension"))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("tensor '{name}'"))?;
        let at = self.pos;
        let id = self
            .u32("the ggml type")
            .with_context(|| format!("tensor '{name}'"))?;
        let ggml_type = GgmlType::from_id(id)
            .ok_or_else(|| anyhow!("tensor '{name}' has unknown ggml type id {id} (at {at})"))?;
        let offset = self
            .u64("the data offset")
            .with_context(|| format!("tensor '{name}'"))?;
        let bs = ggml_type.block_size() as u64;
        ensure!(
            ne[0].is_multiple_of(bs),
            "tensor '{name}': a row of {} values is not a whole number of {ggml_type} blocks \
             ({bs} values)",
            ne[0]
        );
        let n = ne.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let bytes = n.and_then(|n| (n / bs).checked_mul(ggml_type.type_size() as u64));
        ensure!(
            bytes.is_some_and(|b| b <= i64::MAX as u64),
            "tensor '{name}': dimensions {ne:?} overflow"
        );
        Ok(TensorInfo {
            name,
            ne,
            ggml_type,
            offset,
        })
    }
}

/// The header's magic and version: GGUF, 2 or 3.
fn check_header<R: Read>(p: &mut Parser<R>) -> Result<u32> {
    let magic = p.array::<4>("the magic")?;
    if &magic != MAGIC {
        bail!(
            "not a GGUF file: it starts with \"{}\", expected \"GGUF\"",
            magic.escape_ascii()
        );
    }
    let version = p.u32("the version")?;
    match version {
        2 | 3 => Ok(version),
        v if (2..=3).contains(&v.swap_bytes()) => {
            bail!("GGUF version {v} read little-endian: a big-endian file, which is not supported")
        }
        v => bail!("unsupported GGUF version {v} (supported: 2 and 3)"),
    }
}

fn parse<R: Read>(r: R, len: u64, name: String, source: Source) -> Result<GgufFile> {
    let mut p = Parser { r, pos: 0, len };
    let version = check_header(&mut p)?;
    let n_tensors = p.u64("the tensor count")?;
    let n_kv = p.u64("the metadata count")?;
    let mut metadata = Vec::new();
    let mut key_index = HashMap::new();
    for i in 0..n_kv {
        let key = p
            .string("a metadata key")
            .with_context(|| format!("metadata #{i}"))?;
        let ty = p
            .value_type("the value type")
            .with_context(|| format!("key '{key}'"))?;
        let value = p.value(ty, 0).with_context(|| format!("key '{key}'"))?;
        if key_index.insert(key.clone(), metadata.len()).is_some() {
            bail!("metadata key '{key}' appears twice");
        }
        metadata.push((key, value));
    }
    let mut tensors = Vec::new();
    let mut tensor_index = HashMap::new();
    for i in 0..n_tensors {
        let t = p
            .tensor_info()
            .with_context(|| format!("tensor info #{i}"))?;
        if tensor_index.insert(t.name.clone(), tensors.len()).is_some() {
            bail!("tensor '{}' appears twice", t.name);
        }
        tensors.push(t);
    }
    let mut file = GgufFile {
        name,
        source,
        version,
        alignment: DEFAULT_ALIGNMENT,
        data_offset: 0,
        metadata,
        key_index,
        tensors,
        tensor_index,
    };
    file.alignment = alignment(&file)?;
    file.data_offset = p.pos.next_multiple_of(file.alignment);
    check_tensors_fit(&file, len)?;
    Ok(file)
}

/// `general.alignment` (a u32, a non-zero power of two), or the default 32.
fn alignment(file: &GgufFile) -> Result<u64> {
    match file.value(ALIGNMENT_KEY) {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(Value::U32(a)) if a.is_power_of_two() => Ok((*a).into()),
        Some(v) => bail!("{ALIGNMENT_KEY} is {v:?}, expected a u32 power of two"),
    }
}

/// Every tensor starts at a multiple of the alignment and ends inside the file.
fn check_tensors_fit(file: &GgufFile, len: u64) -> Result<()> {
    for t in &file.tensors {
        ensure!(
            t.offset.is_multiple_of(file.alignment),
            "tensor '{}': offset {} is not a multiple of the alignment {}",
            t.name,
            t.offset,
            file.alignment
        );
        let end = file
            .data_offset
            .checked_add(t.offset)
            .and_then(|s| s.checked_add(t.n_bytes()));
        if end.is_none_or(|e| e > len) {
            bail!(
                "tensor '{}' ({} bytes at offset {} of the data section, which starts at {}) \
                 runs past the end of the file ({len} bytes)",
                t.name,
                t.n_bytes(),
                t.offset,
                file.data_offset
            );
        }
    }
    Ok(())
}
