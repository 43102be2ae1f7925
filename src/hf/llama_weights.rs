//! The named parameters of a [`Llama`] under `transformers`' `LlamaForCausalLM` names, and
//! setting them from a file's tensors. torch's `nn.Linear` stores `[out, in]`, burn's `Linear`
//! `[in, out]`: every projection is transposed on the way in and out; embeddings and norm
//! weights are copied as they are.

use super::weights::{HostTensor, Slot};
use crate::model::dense::Dense;
use crate::model::Llama;
use anyhow::{anyhow, bail, Context, Result};
use burn::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// A parameter, its Hugging Face name, and whether the file's layout is its transpose.
pub struct Named<'a> {
    pub name: String,
    pub slot: Slot<'a>,
    pub transposed: bool,
}

fn linear<'a>(prefix: &str, l: &'a mut Dense, out: &mut Vec<Named<'a>>) {
    out.push(Named {
        name: format!("{prefix}.weight"),
        slot: Slot::Matrix(&mut l.weight),
        transposed: true,
    });
    if let Some(b) = l.bias.as_mut() {
        out.push(Named {
            name: format!("{prefix}.bias"),
            slot: Slot::Vector(b),
            transposed: false,
        });
    }
}

fn plain<'a>(name: String, slot: Slot<'a>) -> Named<'a> {
    Named {
        name,
        slot,
        transposed: false,
    }
}

/// Every parameter of `m`, in `LlamaForCausalLM`'s `state_dict()` order.
pub fn llama_slots(m: &mut Llama) -> Vec<Named<'_>> {
    let mut out = vec![plain(
        "model.embed_tokens.weight".into(),
        Slot::Matrix(&mut m.model.embed_tokens.weight),
    )];
    for (i, b) in m.model.layers.iter_mut().enumerate() {
        let p = format!("model.layers.{i}");
        linear(
            &format!("{p}.self_attn.q_proj"),
            &mut b.self_attn.q_proj,
            &mut out,
        );
        linear(
            &format!("{p}.self_attn.k_proj"),
            &mut b.self_attn.k_proj,
            &mut out,
        );
        linear(
            &format!("{p}.self_attn.v_proj"),
            &mut b.self_attn.v_proj,
            &mut out,
        );
        linear(
            &format!("{p}.self_attn.o_proj"),
            &mut b.self_attn.o_proj,
            &mut out,
        );
        linear(
            &format!("{p}.mlp.gate_proj"),
            &mut b.mlp.gate_proj,
            &mut out,
        );
        linear(&format!("{p}.mlp.up_proj"), &mut b.mlp.up_proj, &mut out);
        linear(
            &format!("{p}.mlp.down_proj"),
            &mut b.mlp.down_proj,
            &mut out,
        );
        out.push(plain(
            format!("{p}.input_layernorm.weight"),
            Slot::Vector(&mut b.input_layernorm.weight),
        ));
        out.push(plain(
            format!("{p}.post_attention_layernorm.weight"),
            Slot::Vector(&mut b.post_attention_layernorm.weight),
        ));
    }
    out.push(plain(
        "model.norm.weight".into(),
        Slot::Vector(&mut m.model.norm.weight),
    ));
    if let Some(head) = m.lm_head.as_mut() {
        linear("lm_head", head, &mut out);
    }
    out
}

/// Names a file may hold that are not weights: rotary tables older `transformers` saved.
fn is_buffer(name: &str) -> bool {
    name.ends_with("rotary_emb.inv_freq")
}

/// Sets every parameter of `m` from `tensors` (Hugging Face names and layouts). Every parameter
/// must be present with its shape, and no tensor may be left over (a tied model's file may
/// repeat the embeddings as `lm_head.weight`; that copy must equal them). Returns the names
/// skipped on purpose.
pub fn set_llama(
    m: &mut Llama,
    tensors: &BTreeMap<String, HostTensor>,
    device: &Device,
) -> Result<Vec<String>> {
    let mut used = BTreeSet::new();
    let mut problems = Vec::new();
    for Named {
        name,
        mut slot,
        transposed,
    } in llama_slots(m)
    {
        let Some(t) = tensors.get(&name) else {
            problems.push(format!("missing tensor '{name}'"));
            continue;
        };
        used.insert(name.clone());
        let t = if transposed {
            t.transposed()?
        } else {
            t.clone()
        };
        if let Err(e) = slot.set(&t, device) {
            // report the file's shape, not our layout's
            let want = slot.get().map(|s| s.shape).unwrap_or_default();
            let want: Vec<usize> = if transposed {
                want.into_iter().rev().collect()
            } else {
                want
            };
            problems.push(format!(
                "tensor '{name}': {e} (file layout, expected {want:?})"
            ));
        }
    }
    let mut skipped = Vec::new();
    for (name, t) in tensors.iter().filter(|(n, _)| !used.contains(*n)) {
        let tied_copy = name == "lm_head.weight"
            && m.lm_head.is_none()
            && tensors.get("model.embed_tokens.weight") == Some(t);
        if tied_copy || is_buffer(name) {
            skipped.push(name.clone());
        } else {
            problems.push(format!("unknown tensor '{name}'"));
        }
    }
    if !problems.is_empty() {
        let n = problems.len();
        let shown: Vec<String> = problems.into_iter().take(8).collect();
        bail!(
            "{n} problem(s) with the weights: {}{}",
            shown.join("; "),
            if n > 8 { "; ..." } else { "" }
        );
    }
    Ok(skipped)
}

/// Every parameter of `m` as Hugging Face names and stores it.
pub fn llama_tensors(m: &mut Llama) -> Result<Vec<(String, HostTensor)>> {
    llama_slots(m)
        .into_iter()
        .map(|n| {
            let t = n.slot.get().with_context(|| n.name.clone())?;
            let t = if n.transposed { t.transposed()? } else { t };
            Ok((n.name, t))
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e| anyhow!("reading the model's parameters: {e:#}"))
}
