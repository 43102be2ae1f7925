//! `rlhf score`: a reward (the normalisation bias included) for every response of a samples
//! file, from a reward-model checkpoint. Sequences longer than the context are cut (the prompt
//! from the left) and counted in a warning.

use crate::checkpoint;
use crate::data::pairs::{tokenize_pair_counted, warn_cut, TokRanking};
use crate::model::score::group_rewards;
use crate::util::tensors::to_vec;
use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use std::path::Path;

/// Scores every response of `data` with the reward model at `rm`; one JSON object per prompt.
pub fn score_file(rm: &Path, data: &Path, device: &Device) -> Result<Vec<serde_json::Value>> {
    let loaded = checkpoint::load_rm(rm, device)?;
    let bias = loaded.config.reward_bias.unwrap_or(0.0);
    let samples = crate::data::formats::read_samples(data)?;
    let model = loaded.model.valid();
    let n_ctx = loaded.config.model.n_ctx;
    let (mut cut, mut total) = (0, 0);
    let mut out = Vec::new();
    for s in samples {
        let mut seqs = Vec::with_capacity(s.responses.len());
        for x in &s.responses {
            let (seq, c) = tokenize_pair_counted(&loaded.tok, &s.prompt, x, n_ctx)?;
            cut += usize::from(c);
            total += 1;
            seqs.push(seq);
        }
        let rewards: Vec<f64> = if seqs.is_empty() {
            Vec::new()
        } else {
            let g = TokRanking { seqs };
            let r = group_rewards(&model, &[&g], loaded.tok.eot, device).rewards;
            to_vec(r)?.into_iter().map(|x| x as f64 + bias).collect()
        };
        out.push(
            serde_json::json!({"prompt": s.prompt, "responses": s.responses, "rewards": rewards}),
        );
    }
    warn_cut("score", cut, total, n_ctx);
    Ok(out)
}
