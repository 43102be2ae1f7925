//! Moving weights between our models and safetensors files by explicit name: host tensors
//! (f32, row-major, with a shape), reading any float dtype a Hugging Face file may hold, writing
//! f32 with the `{"format": "pt"}` metadata `transformers` requires, and the named parameter
//! slots of a [`Gpt`].

use crate::model::dense::Dense;
use crate::model::Gpt;
use anyhow::{anyhow, bail, Context, Result};
use burn::module::Param;
use burn::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// A tensor on the host: f32 values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    /// The transpose of a 2-D tensor (torch `nn.Linear` `[out, in]` ↔ burn `Linear` `[in, out]`).
    pub fn transposed(&self) -> Result<Self> {
        let [r, c] = self.shape[..] else {
            bail!("cannot transpose a tensor of shape {:?}", self.shape);
        };
        let mut data = vec![0.0; r * c];
        for i in 0..r {
            for j in 0..c {
                data[j * r + i] = self.data[i * c + j];
            }
        }
        Ok(Self {
            shape: vec![c, r],
            data,
        })
    }
}

/// Every tensor of a safetensors file, converted to f32 (from F32, F16, BF16 or F64).
pub fn read_safetensors(path: &Path) -> Result<BTreeMap<String, HostTensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow!("{} is not a safetensors file: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.iter() {
        let b = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => b
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::F64 => b
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            other => bail!(
                "{}: tensor '{name}' has dtype {other:?}; only F32, F16, BF16 and F64 are read",
                path.display()
            ),
        };
        let shape = view.shape().to_vec();
        out.insert(name.to_string(), HostTensor { shape, data });
    }
    Ok(out)
}

/// Writes f32 tensors with the metadata `{"format": "pt"}` (what `transformers` checks for).
pub fn write_safetensors(tensors: &[(String, HostTensor)], path: &Path) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, t)| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, t), b) in tensors.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, t.shape.clone(), b)
            .map_err(|e| anyhow!("tensor {name} {:?}: {e}", t.shape))?;
        views.push((name.clone(), view));
    }
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let tmp = crate::util::fs::tmp_path(path);
    safetensors::tensor::serialize_to_file(views, Some(meta), &tmp)
        .map_err(|e| anyhow!("writing {}: {e}", tmp.display()))?;
    crate::util::fs::commit(&tmp, path)
}

/// A parameter of the model, by rank.
pub enum Slot<'a> {
    Vector(&'a mut Param<Tensor<1>>),
    Matrix(&'a mut Param<Tensor<2>>),
}

impl Slot<'_> {
    /// The parameter's values.
    pub fn get(&self) -> Result<HostTensor> {
        let (shape, data) = match self {
            Slot::Vector(p) => (p.dims().to_vec(), p.val().into_data()),
            Slot::Matrix(p) => (p.dims().to_vec(), p.val().into_data()),
        };
        let data = data
            .try_to_vec::<f32>()
            .map_err(|e| anyhow!("reading a parameter: {e:?}"))?;
        Ok(HostTensor { shape, data })
    }

    /// Replaces the parameter; `t` must have its shape.
    pub fn set(&mut self, t: &HostTensor, device: &Device) -> Result<()> {
        match self {
            Slot::Vector(p) => {
                ensure_shape(&p.dims(), &t.shape)?;
                let d = TensorData::new(t.data.clone(), [t.shape[0]]);
                **p = Param::from_tensor(Tensor::from_data(d, device));
            }
            Slot::Matrix(p) => {
                ensure_shape(&p.dims(), &t.shape)?;
                let d = TensorData::new(t.data.clone(), [t.shape[0], t.shape[1]]);
                **p = Param::from_tensor(Tensor::from_data(d, device));
            }
        }
        Ok(())
    }
}

fn ensure_shape(want: &[usize], got: &[usize]) -> Result<()> {
    if want != got {
        bail!("shape {got:?}, expected {want:?}");
    }
    Ok(())
}

fn linear_slots<'a>(prefix: &str, l: &'a mut Dense, out: &mut Vec<(String, Slot<'a>)>) {
    out.push((format!("{prefix}.weight"), Slot::Matrix(&mut l.weight)));
    if let Some(b) = l.bias.as_mut() {
        out.push((format!("{prefix}.bias"), Slot::Vector(b)));
    }
}

/// The parameters of `m` under their GPT-2 names, in the order of
/// [`super::layout::gpt2_tensors`]. The layout of each is GPT-2's (`Linear` = `Conv1D`,
/// `[in, out]`).
pub fn gpt_slots(m: &mut Gpt) -> Vec<(String, Slot<'_>)> {
    let mut out = vec![
        ("wte.weight".to_string(), Slot::Matrix(&mut m.wte.weight)),
        ("wpe.weight".to_string(), Slot::Matrix(&mut m.wpe.weight)),
    ];
    for (i, b) in m.h.iter_mut().enumerate() {
        out.push((
            format!("h.{i}.ln_1.weight"),
            Slot::Vector(&mut b.ln_1.weight),
        ));
        out.push((format!("h.{i}.ln_1.bias"), Slot::Vector(&mut b.ln_1.bias)));
        linear_slots(&format!("h.{i}.attn.c_attn"), &mut b.attn.c_attn, &mut out);
        linear_slots(&format!("h.{i}.attn.c_proj"), &mut b.attn.c_proj, &mut out);
        out.push((
            format!("h.{i}.ln_2.weight"),
            Slot::Vector(&mut b.ln_2.weight),
        ));
        out.push((format!("h.{i}.ln_2.bias"), Slot::Vector(&mut b.ln_2.bias)));
        linear_slots(&format!("h.{i}.mlp.c_fc"), &mut b.mlp.c_fc, &mut out);
        linear_slots(&format!("h.{i}.mlp.c_proj"), &mut b.mlp.c_proj, &mut out);
    }
    out.push(("ln_f.weight".to_string(), Slot::Vector(&mut m.ln_f.weight)));
    out.push(("ln_f.bias".to_string(), Slot::Vector(&mut m.ln_f.bias)));
    out
}

/// The trunk's tensors under their bare GPT-2 names, `prefix` prepended (`transformer.`).
pub fn gpt_tensors(m: &mut Gpt, prefix: &str) -> Result<Vec<(String, HostTensor)>> {
    gpt_slots(m)
        .into_iter()
        .map(|(n, s)| Ok((format!("{prefix}{n}"), s.get().with_context(|| n.clone())?)))
        .collect()
}

/// Sets every trunk parameter from `tensors` (bare names); each must be present.
pub fn set_gpt(m: &mut Gpt, tensors: &BTreeMap<String, HostTensor>, device: &Device) -> Result<()> {
    for (name, mut slot) in gpt_slots(m) {
        let t = tensors
            .get(&name)
            .ok_or_else(|| anyhow!("missing tensor '{name}'"))?;
        slot.set(t, device)
            .with_context(|| format!("tensor '{name}'"))?;
    }
    Ok(())
}
