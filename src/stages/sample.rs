//! `rlhf sample`: K responses per prompt from a checkpoint, batched with the KV cache, written
//! as `{"prompt","responses":[K strings]}` per line. Prompts longer than the context leaves
//! beside the response are cut from the left, with a warning that counts them.

use crate::checkpoint;
use crate::data::formats::{read_prompts, write_jsonl, SampleRecord};
use crate::model::generate::{generate_parallel, prompt_room, SampleConfig};
use crate::train::metrics::progress_bar;
use crate::util::rng::Rng;
use anyhow::{bail, Result};
use burn::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

pub struct SampleJob {
    pub ckpt: PathBuf,
    pub prompts: PathBuf,
    pub k: usize,
    pub out: PathBuf,
    pub sampling: SampleConfig,
    pub seed: u64,
    /// Sequences generated together (prompts × K are split into batches of this size).
    pub batch_size: usize,
    /// Use at most this many prompts (0: all).
    pub limit: usize,
}

pub fn run(job: &SampleJob, device: &Device) -> Result<Vec<SampleRecord>> {
    if job.k == 0 {
        bail!("-k must be at least 1");
    }
    let loaded = checkpoint::load_lm(&job.ckpt, device)?;
    let mut prompts = read_prompts(&job.prompts)?;
    if job.limit > 0 {
        prompts.truncate(job.limit);
    }
    let model = loaded.model.valid();
    let room = prompt_room(model.n_ctx(), &job.sampling);
    let mut rng = Rng::new(job.seed);
    // every (prompt, k) pair is one row; rows are generated in batches
    let rows: Vec<(usize, Vec<u32>)> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| loaded.tok.prompt_ids(p).map(|ids| (i, ids)))
        .collect::<Result<Vec<_>>>()?;
    let cut = rows.iter().filter(|(_, ids)| ids.len() > room).count();
    if cut > 0 {
        eprintln!(
            "sample: warning: {cut} of {} prompts are longer than the {room} tokens the context \
             leaves beside --max-new-tokens {} and were cut from the left",
            prompts.len(),
            job.sampling.max_new_tokens
        );
    }
    let rows: Vec<(usize, Vec<u32>)> = rows
        .into_iter()
        .flat_map(|(i, ids)| std::iter::repeat_n((i, ids), job.k))
        .collect();
    let mut out: Vec<SampleRecord> = prompts
        .iter()
        .map(|p| SampleRecord {
            prompt: p.clone(),
            responses: Vec::new(),
        })
        .collect();
    let pb = progress_bar(rows.len() as u64, "sample");
    let t0 = Instant::now();
    let mut n_tokens = 0usize;
    for chunk in rows.chunks(job.batch_size.max(1)) {
        let ids: Vec<Vec<u32>> = chunk.iter().map(|(_, ids)| ids.clone()).collect();
        let gens = generate_parallel(
            &model,
            &ids,
            &job.sampling,
            loaded.tok.eot,
            &mut rng,
            device,
        )?;
        for ((i, _), g) in chunk.iter().zip(gens) {
            n_tokens += g.len();
            out[*i]
                .responses
                .push(loaded.tok.decode(&g)?.trim().to_string());
        }
        pb.inc(chunk.len() as u64);
        pb.set_message(format!(
            "{:.0} tok/s",
            n_tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9)
        ));
    }
    pb.finish_and_clear();
    crate::util::fs::create_parent_dir(&job.out)?;
    write_jsonl(&job.out, &out)?;
    eprintln!(
        "sample: {} prompts × {} responses, {} tokens in {:.1}s -> {}",
        out.len(),
        job.k,
        n_tokens,
        t0.elapsed().as_secs_f64(),
        job.out.display()
    );
    Ok(out)
}
