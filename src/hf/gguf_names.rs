//! What GGUF import and export share: llama.cpp's names for `transformers`' Llama tensors, and
//! the reordering of the `attn_q` / `attn_k` rows that llama.cpp's converter applies to `llama`
//! files (its rotary kernel pairs neighbouring elements of a head, `transformers`' pairs the two
//! halves of a head). [`permute`] is the converter's `LlamaModel.permute`, [`unpermute`] its
//! inverse (what `transformers` does when it reads a GGUF). `qwen2` files keep `transformers`'
//! order (llama.cpp's Qwen2 uses the half-pairing "NeoX" rotation).

use super::weights::HostTensor;
use anyhow::{anyhow, bail, Result};

/// llama.cpp's name of a `transformers` tensor name.
pub(crate) fn gguf_name(hf: &str) -> Result<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(n) = fixed {
        return Ok(n.into());
    }
    let rest = hf
        .strip_prefix("model.layers.")
        .ok_or_else(|| anyhow!("no GGUF name for '{hf}'"))?;
    let (layer, rest) = rest
        .split_once('.')
        .ok_or_else(|| anyhow!("no GGUF name for '{hf}'"))?;
    let (module, param) = rest
        .rsplit_once('.')
        .ok_or_else(|| anyhow!("no GGUF name for '{hf}'"))?;
    let short = match module {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        _ => bail!("no GGUF name for '{hf}'"),
    };
    Ok(format!("blk.{layer}.{short}.{param}"))
}

/// Moves row `from(h, s, j)` of each of `heads` heads to row `to(h, s, j)`, for `s` in 0..2 and
/// `j` below half a head. `t` is `[heads·hs, cols]` or `[heads·hs]`.
fn reorder(
    t: &HostTensor,
    heads: usize,
    index: impl Fn(usize, usize, usize, usize) -> (usize, usize),
) -> HostTensor {
    let rows = t.shape[0];
    let cols = t.data.len() / rows.max(1);
    let hs = rows / heads.max(1);
    let half = hs / 2;
    let mut data = vec![0.0; t.data.len()];
    for h in 0..heads {
        for s in 0..2 {
            for j in 0..half {
                let (to, from) = index(h * hs, half, s, j);
                data[to * cols..(to + 1) * cols]
                    .copy_from_slice(&t.data[from * cols..(from + 1) * cols]);
            }
        }
    }
    HostTensor {
        shape: t.shape.clone(),
        data,
    }
}

/// llama.cpp's row order within each of `heads` heads: its row `2j + s` of a head is
/// `transformers`' row `s·hs/2 + j` (`reshape(heads, 2, hs/2, ...).swapaxes(1, 2)`).
pub(crate) fn permute(t: &HostTensor, heads: usize) -> HostTensor {
    reorder(t, heads, |base, half, s, j| {
        (base + 2 * j + s, base + s * half + j)
    })
}

/// Undoes [`permute`]: `transformers`' row `s·hs/2 + j` of a head is llama.cpp's row `2j + s`.
pub(crate) fn unpermute(t: &HostTensor, heads: usize) -> HostTensor {
    reorder(t, heads, |base, half, s, j| {
        (base + s * half + j, base + 2 * j + s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_as_llama_cpp_names_them() {
        let cases = [
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("model.layers.3.self_attn.q_proj.bias", "blk.3.attn_q.bias"),
            (
                "model.layers.12.self_attn.o_proj.weight",
                "blk.12.attn_output.weight",
            ),
            (
                "model.layers.0.mlp.down_proj.weight",
                "blk.0.ffn_down.weight",
            ),
            (
                "model.layers.0.post_attention_layernorm.weight",
                "blk.0.ffn_norm.weight",
            ),
            ("model.norm.weight", "output_norm.weight"),
            ("lm_head.weight", "output.weight"),
        ];
        for (hf, want) in cases {
            assert_eq!(gguf_name(hf).unwrap(), want);
        }
        assert!(gguf_name("model.layers.0.mlp.fc.weight").is_err());
    }

    /// llama.cpp's `permute` (convert_hf_to_gguf.py) on one head of 4 rows [a, b, c, d] (halves
    /// [a, b] and [c, d]) gives [a, c, b, d]; undoing it gives [a, b, c, d] back.
    #[test]
    fn unpermute_restores_the_halves_of_each_head() {
        let t = HostTensor {
            shape: vec![8, 1],
            data: vec![0., 2., 1., 3., 10., 12., 11., 13.],
        };
        let back = unpermute(&t, 2);
        assert_eq!(back.data, vec![0., 1., 2., 3., 10., 11., 12., 13.]);
    }

    /// The converter's numpy on `arange(12).reshape(6, 2)` with 1 head of 6 rows:
    /// `w.reshape(1, 2, 3, 2).swapaxes(1, 2).reshape(6, 2)` takes rows [0, 3, 1, 4, 2, 5]
    /// (`python -c "import numpy as n; print(n.arange(12).reshape(1,2,3,2).swapaxes(1,2)
    /// .reshape(6,2))"`); unpermute puts them back.
    #[test]
    fn permute_interleaves_the_halves_as_the_converter_does() {
        let t = HostTensor {
            shape: vec![6, 2],
            data: (0..12).map(|x| x as f32).collect(),
        };
        let p = permute(&t, 1);
        let want: Vec<f32> = [0, 3, 1, 4, 2, 5]
            .iter()
            .flat_map(|&r| [2 * r, 2 * r + 1])
            .map(|x| x as f32)
            .collect();
        assert_eq!(p.data, want);
        assert_eq!(unpermute(&p, 1).data, t.data);
    }
}
