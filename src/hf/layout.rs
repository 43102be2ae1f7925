//! The tensor layout of Hugging Face's GPT-2: every name and shape `GPT2Model` stores, in its
//! `state_dict()` order, and how names found in a file are sorted on import.
//!
//! Shapes are GPT-2's: `Conv1D` weights are `[in, out]` (`c_attn` `[C, 3C]`, `c_fc` `[C, 4C]`,
//! `mlp.c_proj` `[4C, C]`), embeddings `[rows, C]`, LayerNorm and bias vectors `[n]`.

use crate::config::ModelConfig;

/// What a tensor name found in a Hugging Face file stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A trunk parameter, by its bare name (`h.0.attn.c_attn.weight`).
    Trunk(String),
    /// `lm_head.weight`: GPT-2 ties it to `wte.weight`; accepted only when equal to it.
    TiedHead,
    /// `score.weight` of `GPT2ForSequenceClassification`, `[num_labels, C]`.
    Score,
    /// The causal-mask buffers `h.N.attn.bias` and `h.N.attn.masked_bias` that older
    /// `transformers` versions saved: constants, not weights, so they are skipped.
    Buffer,
}

/// Sorts a tensor name. `GPT2LMHeadModel` and `GPT2ForSequenceClassification` prefix the trunk
/// with `transformer.`; `GPT2Model` (and the `gpt2` hub files) use bare names. Both are accepted.
pub fn classify(name: &str) -> Role {
    match name {
        "lm_head.weight" => return Role::TiedHead,
        "score.weight" => return Role::Score,
        _ => {}
    }
    let bare = name.strip_prefix("transformer.").unwrap_or(name);
    let parts: Vec<&str> = bare.split('.').collect();
    let is_buffer = matches!(
        parts.as_slice(),
        ["h", i, "attn", "bias" | "masked_bias"] if i.parse::<usize>().is_ok()
    );
    if is_buffer {
        Role::Buffer
    } else {
        Role::Trunk(bare.to_string())
    }
}

/// GPT-2's trunk tensors for `cfg` (bare names, `GPT2Model.state_dict()` order, persistent
/// parameters only) with their shapes.
pub fn gpt2_tensors(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (c, v, t) = (cfg.n_embd, cfg.vocab_size, cfg.n_ctx);
    let mut out = vec![
        ("wte.weight".to_string(), vec![v, c]),
        ("wpe.weight".to_string(), vec![t, c]),
    ];
    for i in 0..cfg.n_layer {
        let block: [(&str, Vec<usize>); 12] = [
            ("ln_1.weight", vec![c]),
            ("ln_1.bias", vec![c]),
            ("attn.c_attn.weight", vec![c, 3 * c]),
            ("attn.c_attn.bias", vec![3 * c]),
            ("attn.c_proj.weight", vec![c, c]),
            ("attn.c_proj.bias", vec![c]),
            ("ln_2.weight", vec![c]),
            ("ln_2.bias", vec![c]),
            ("mlp.c_fc.weight", vec![c, 4 * c]),
            ("mlp.c_fc.bias", vec![4 * c]),
            ("mlp.c_proj.weight", vec![4 * c, c]),
            ("mlp.c_proj.bias", vec![c]),
        ];
        out.extend(block.into_iter().map(|(n, s)| (format!("h.{i}.{n}"), s)));
    }
    out.push(("ln_f.weight".to_string(), vec![c]));
    out.push(("ln_f.bias".to_string(), vec![c]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_by_role() {
        assert_eq!(classify("wte.weight"), Role::Trunk("wte.weight".into()));
        assert_eq!(
            classify("transformer.h.11.mlp.c_fc.bias"),
            Role::Trunk("h.11.mlp.c_fc.bias".into())
        );
        assert_eq!(classify("h.3.attn.bias"), Role::Buffer);
        assert_eq!(classify("transformer.h.0.attn.masked_bias"), Role::Buffer);
        // the bias of c_attn is a weight, not the mask buffer
        assert_eq!(
            classify("h.0.attn.c_attn.bias"),
            Role::Trunk("h.0.attn.c_attn.bias".into())
        );
        assert_eq!(classify("lm_head.weight"), Role::TiedHead);
        assert_eq!(classify("score.weight"), Role::Score);
    }

    #[test]
    fn gpt2_small_has_124m_parameters() {
        let cfg = ModelConfig::preset("gpt2").unwrap();
        let l = gpt2_tensors(&cfg);
        assert_eq!(l.len(), 2 + 12 * 12 + 2);
        let n: usize = l.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
        assert_eq!(n, 124_439_808);
        assert_eq!(n, cfg.num_params());
    }
}
