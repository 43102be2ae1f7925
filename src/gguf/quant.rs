//! ggml's tensor element types (`GgmlType`: id, block size, bytes per block) and the block
//! formats: dequantisation to f32 for the float types, the legacy quants (Q4_0 ... Q8_0) and the
//! K-quants (Q2_K ... Q6_K), and the quantisers the writer needs (F16, Q8_0).
//!
//! Every function does what ggml's reference code does (`ggml-quants.c`, `dequantize_row_*` and
//! `quantize_row_q8_0_ref`), in the same single-precision operations in the same order, so the
//! results are bitwise those of ggml and of the `gguf` python package (tests/gguf/quant.rs).
//! A block is a fixed number of values (`block_size`) stored in a fixed number of bytes
//! (`type_size`); a row of a tensor is a whole number of blocks.

use anyhow::{bail, Result};
use half::{bf16, f16};
use rayon::prelude::*;

/// Values in one K-quant super-block.
const QK_K: usize = 256;

/// The element type of a GGUF tensor (ggml's `ggml_type`). Every type ggml has defined is known
/// here (so a file holding any of them opens and its metadata reads); [`GgmlType::can_dequantize`]
/// says which ones [`dequantize`] supports.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
}

use GgmlType as T;

/// (type, ggml id, block size, bytes per block), as ggml's `type_traits` and gguf-py's
/// `GGML_QUANT_SIZES` give them.
const TABLE: [(GgmlType, u32, usize, usize); 32] = [
    (T::F32, 0, 1, 4),
    (T::F16, 1, 1, 2),
    (T::Q4_0, 2, 32, 18),
    (T::Q4_1, 3, 32, 20),
    (T::Q5_0, 6, 32, 22),
    (T::Q5_1, 7, 32, 24),
    (T::Q8_0, 8, 32, 34),
    (T::Q8_1, 9, 32, 40),
    (T::Q2_K, 10, QK_K, 84),
    (T::Q3_K, 11, QK_K, 110),
    (T::Q4_K, 12, QK_K, 144),
    (T::Q5_K, 13, QK_K, 176),
    (T::Q6_K, 14, QK_K, 210),
    (T::Q8_K, 15, QK_K, 292),
    (T::IQ2_XXS, 16, QK_K, 66),
    (T::IQ2_XS, 17, QK_K, 74),
    (T::IQ3_XXS, 18, QK_K, 98),
    (T::IQ1_S, 19, QK_K, 50),
    (T::IQ4_NL, 20, 32, 18),
    (T::IQ3_S, 21, QK_K, 110),
    (T::IQ2_S, 22, QK_K, 82),
    (T::IQ4_XS, 23, QK_K, 136),
    (T::I8, 24, 1, 1),
    (T::I16, 25, 1, 2),
    (T::I32, 26, 1, 4),
    (T::I64, 27, 1, 8),
    (T::F64, 28, 1, 8),
    (T::IQ1_M, 29, QK_K, 56),
    (T::BF16, 30, 1, 2),
    (T::TQ1_0, 34, QK_K, 54),
    (T::TQ2_0, 35, QK_K, 66),
    (T::MXFP4, 39, 32, 17),
];

impl GgmlType {
    /// The type with ggml id `id`, or `None` for an id ggml never defined or has removed.
    pub fn from_id(id: u32) -> Option<Self> {
        TABLE.iter().find(|r| r.1 == id).map(|r| r.0)
    }

    /// The type named `name` as ggml names it (`Q4_K`, `bf16`; any case).
    pub fn from_name(name: &str) -> Option<Self> {
        TABLE
            .iter()
            .map(|r| r.0)
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    fn row(self) -> (GgmlType, u32, usize, usize) {
        // every variant has a row: the table lists them all (test `table_covers_every_type`)
        TABLE
            .iter()
            .copied()
            .find(|r| r.0 == self)
            .unwrap_or((self, u32::MAX, 1, 0))
    }

    /// ggml's id of this type (`GGML_TYPE_*`).
    pub fn id(self) -> u32 {
        self.row().1
    }

    /// Values per block (1 for the plain types, 32 or 256 for quantised ones).
    pub fn block_size(self) -> usize {
        self.row().2
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        self.row().3
    }

    /// ggml's name of the type (`Q4_K`, `BF16`, ...).
    pub fn name(self) -> String {
        format!("{self:?}")
    }

    /// Whether [`dequantize`] supports this type.
    pub fn can_dequantize(self) -> bool {
        dequantizer(self).is_some()
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// A block dequantiser: one block of bytes (`type_size` long) to `block_size` values.
type BlockFn = fn(&[u8], &mut [f32]);

fn dequantizer(ty: GgmlType) -> Option<BlockFn> {
    Some(match ty {
        T::F32 => |b, y| y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        T::F16 => |b, y| y[0] = f16_at(b, 0),
        T::BF16 => |b, y| y[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        T::Q4_0 => dequant_q4_0,
        T::Q4_1 => dequant_q4_1,
        T::Q5_0 => dequant_q5_0,
        T::Q5_1 => dequant_q5_1,
        T::Q8_0 => dequant_q8_0,
        T::Q2_K => dequant_q2_k,
        T::Q3_K => dequant_q3_k,
        T::Q4_K => dequant_q4_k,
        T::Q5_K => dequant_q5_k,
        T::Q6_K => dequant_q6_k,
        _ => return None,
    })
}

/// The f32 values of `data`, a whole number of `ty` blocks (row after row, as a tensor's data
/// is stored). Errors on a type [`GgmlType::can_dequantize`] refuses (naming it) and on a length
/// that is not a whole number of blocks.
pub fn dequantize(ty: GgmlType, data: &[u8]) -> Result<Vec<f32>> {
    let Some(f) = dequantizer(ty) else {
        bail!(
            "dequantising {ty} is not supported (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, \
             Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)"
        );
    };
    let (bs, ts) = (ty.block_size(), ty.type_size());
    if !data.len().is_multiple_of(ts) {
        bail!(
            "{} bytes of {ty} data are not a whole number of {ts}-byte blocks",
            data.len()
        );
    }
    let mut out = vec![0f32; data.len() / ts * bs];
    out.par_chunks_mut(bs)
        .zip(data.par_chunks_exact(ts))
        .for_each(|(y, b)| f(b, y));
    Ok(out)
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Q4_0, 18 bytes: d (f16), 16 bytes of 4-bit q (value j in the low nibble of byte j, value
/// j + 16 in its high nibble); x = (q - 8) * d.
fn dequant_q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (j, &q) in b[2..18].iter().enumerate() {
        y[j] = ((q & 0xF) as i32 - 8) as f32 * d;
        y[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

/// Q4_1, 20 bytes: d, m (f16), 16 bytes of nibbles as Q4_0; x = q * d + m.
fn dequant_q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    for (j, &q) in b[4..20].iter().enumerate() {
        y[j] = (q & 0xF) as f32 * d + m;
        y[j + 16] = (q >> 4) as f32 * d + m;
    }
}

/// The 5-bit values of a Q5_0/Q5_1 block: `qh` holds bit 4 of value j in its bit j, `qs` the
/// low nibbles as Q4_0 lays them out.
fn q5_values(qh: u32, qs: &[u8]) -> [u8; 32] {
    let mut q = [0u8; 32];
    for (j, &lo) in qs.iter().enumerate() {
        q[j] = (lo & 0xF) | ((((qh >> j) & 1) as u8) << 4);
        q[j + 16] = (lo >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
    }
    q
}

/// Q5_0, 22 bytes: d (f16), qh (u32), 16 bytes of low nibbles; x = (q - 16) * d.
fn dequant_q5_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    for (yj, q) in y.iter_mut().zip(q5_values(qh, &b[6..22])) {
        *yj = (q as i32 - 16) as f32 * d;
    }
}

/// Q5_1, 24 bytes: d, m (f16), qh (u32), 16 bytes of low nibbles; x = q * d + m.
fn dequant_q5_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    for (yj, q) in y.iter_mut().zip(q5_values(qh, &b[8..24])) {
        *yj = q as f32 * d + m;
    }
}

/// Q8_0, 34 bytes: d (f16), 32 signed bytes q; x = q * d.
fn dequant_q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (yj, &q) in y.iter_mut().zip(&b[2..34]) {
        *yj = q as i8 as f32 * d;
    }
}

/// Q2_K, 84 bytes: 16 scale bytes (low nibble: scale, high nibble: min of each 16 values),
/// 64 bytes of 2-bit q, d, dmin (f16). Value e (half h = e / 128, r = e % 128) is bits
/// 2 * (r / 32) of byte 32 h + r % 32; x = d * sc * q - dmin * m.
fn dequant_q2_k(b: &[u8], y: &mut [f32]) {
    let (sc, qs) = (&b[0..16], &b[16..80]);
    let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
    for (e, ye) in y.iter_mut().enumerate() {
        let (h, r) = (e / 128, e % 128);
        let q = (qs[32 * h + r % 32] >> (2 * (r / 32))) & 3;
        let s = sc[e / 16];
        let dl = d * (s & 0xF) as f32;
        let ml = dmin * (s >> 4) as f32;
        *ye = dl * q as f32 - ml;
    }
}

/// Q3_K, 110 bytes: hmask (32 bytes: the high bit of each value), 64 bytes of 2-bit low q (laid
/// out as Q2_K's), 12 bytes of sixteen 6-bit scales, d (f16). The high bit of value e (half h,
/// r = e % 128) is bit 4 h + r / 32 of hmask[r % 32]; q = low - (high ? 0 : 4);
/// x = d * (scale - 32) * q.
fn dequant_q3_k(b: &[u8], y: &mut [f32]) {
    let (hmask, qs, packed) = (&b[0..32], &b[32..96], &b[96..108]);
    let d = f16_at(b, 108);
    // scale j: low 4 bits from nibble (j / 8) of byte j % 8, high 2 bits from bits 2 (j / 4)
    // of byte 8 + j % 4
    let scales: [f32; 16] = std::array::from_fn(|j| {
        let lo = (packed[j % 8] >> (4 * (j / 8))) & 0xF;
        let hi = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        ((lo | (hi << 4)) as i32 - 32) as f32
    });
    for (e, ye) in y.iter_mut().enumerate() {
        let (h, r) = (e / 128, e % 128);
        let low = ((qs[32 * h + r % 32] >> (2 * (r / 32))) & 3) as i32;
        let high = (hmask[r % 32] >> (4 * h + r / 32)) & 1;
        let q = low - if high == 1 { 0 } else { 4 };
        *ye = d * scales[e / 16] * q as f32;
    }
}

/// The 6-bit scale and min of sub-block j (0..8) of a Q4_K/Q5_K block (ggml's
/// `get_scale_min_k4`): bytes 0..4 hold scales 0..3, bytes 4..8 mins 0..3 (low 6 bits each);
/// sub-blocks 4..7 take their low 4 bits from bytes 8..12 and their high 2 bits from the top
/// bits of bytes 0..8.
fn scale_min_k4(j: usize, s: &[u8]) -> (f32, f32) {
    let (sc, m) = if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    };
    (sc as f32, m as f32)
}

/// Q4_K, 144 bytes: d, dmin (f16), 12 bytes of scales and mins (eight 32-value sub-blocks),
/// 128 bytes of nibbles: value e (chunk c = e / 64, r = e % 64) is nibble r / 32 of byte
/// 32 c + r % 32; x = d * sc * q - dmin * m.
fn dequant_q4_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qs) = (&b[4..16], &b[16..144]);
    for (e, ye) in y.iter_mut().enumerate() {
        let (c, r) = (e / 64, e % 64);
        let q = (qs[32 * c + r % 32] >> (4 * (r / 32))) & 0xF;
        let (sc, m) = scale_min_k4(e / 32, scales);
        *ye = d * sc * q as f32 - dmin * m;
    }
}

/// Q5_K, 176 bytes: as Q4_K with 32 bytes of high bits (qh) before the nibbles: bit e / 32 of
/// qh[e % 32] is bit 4 of value e.
fn dequant_q5_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
    for (e, ye) in y.iter_mut().enumerate() {
        let (c, r) = (e / 64, e % 64);
        let lo = (qs[32 * c + r % 32] >> (4 * (r / 32))) & 0xF;
        let hi = (qh[e % 32] >> (e / 32)) & 1;
        let (sc, m) = scale_min_k4(e / 32, scales);
        *ye = d * sc * (lo | (hi << 4)) as f32 - dmin * m;
    }
}

/// Q6_K, 210 bytes: 128 bytes of low nibbles (ql), 64 bytes of 2-bit highs (qh), sixteen
/// signed scales, d (f16). Value e (half h, r = e % 128): low nibble r / 64 of
/// ql[64 h + r % 64], high bits 2 (r / 32) of qh[32 h + r % 32]; x = d * scale * (q - 32).
fn dequant_q6_k(b: &[u8], y: &mut [f32]) {
    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = f16_at(b, 208);
    for (e, ye) in y.iter_mut().enumerate() {
        let (h, r) = (e / 128, e % 128);
        let lo = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0xF;
        let hi = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
        let q = (lo | (hi << 4)) as i32 - 32;
        *ye = d * sc[e / 16] as i8 as f32 * q as f32;
    }
}

/// `x` encoded as `ty` for the writer: F32, F16 (round to nearest even, as ggml and numpy) or
/// Q8_0 (as ggml's `quantize_row_q8_0_ref`). `x.len()` must be a whole number of blocks.
pub fn quantize(ty: GgmlType, x: &[f32]) -> Result<Vec<u8>> {
    match ty {
        T::F32 => Ok(x.iter().flat_map(|v| v.to_le_bytes()).collect()),
        T::F16 => Ok(x
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect()),
        T::Q8_0 => {
            if !x.len().is_multiple_of(32) {
                bail!(
                    "{} values are not a whole number of 32-value Q8_0 blocks",
                    x.len()
                );
            }
            Ok(x.chunks_exact(32).flat_map(quantize_q8_0_block).collect())
        }
        _ => bail!("writing {ty} is not supported (supported: F32, F16, Q8_0)"),
    }
}

/// One Q8_0 block: d = max |x| / 127 (stored as f16), q = round(x / d) (halves away from zero,
/// C's `roundf`), with the reciprocal 1 / d taken once as ggml does.
fn quantize_q8_0_block(x: &[f32]) -> Vec<u8> {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut out = Vec::with_capacity(34);
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    out.extend(x.iter().map(|v| ((v * id).round() as i8) as u8));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_every_type() {
        for (ty, id, bs, ts) in TABLE {
            assert_eq!(GgmlType::from_id(id), Some(ty));
            assert_eq!((ty.id(), ty.block_size(), ty.type_size()), (id, bs, ts));
        }
        assert_eq!(GgmlType::from_id(4), None); // Q4_2, removed from ggml
        assert_eq!(GgmlType::from_name("q4_k"), Some(GgmlType::Q4_K));
    }

    #[test]
    fn q8_0_rounds_halves_away_from_zero() {
        // amax 127 gives d = 1 exactly, so q = round(x): 0.5 -> 1, -2.5 -> -3, as C's roundf
        let mut x = [0f32; 32];
        x[..4].copy_from_slice(&[127.0, 0.5, -2.5, 1.49]);
        let b = quantize(GgmlType::Q8_0, &x).unwrap();
        assert_eq!(&b[..2], &f16::from_f32(1.0).to_le_bytes());
        assert_eq!(&b[2..6], &[127, 1, (-3i8) as u8, 1]);
    }
}
