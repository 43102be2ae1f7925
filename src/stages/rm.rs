//! `rlhf rm`: the reward model on K-wise rankings (InstructGPT eq. 1), and `rlhf score`.
//!
//! As in the paper, all C(K,2) pairs of a prompt belong to ONE batch and each response runs
//! through the model once per step: a batch of P prompts is Σ K_p sequences in one forward,
//! and the loss `−1/C(K,2) Σ_pairs log σ(r_w − r_l)`, averaged over prompts, is computed from
//! those Σ K_p rewards by the ranking-loss kernel (`src/kernels/ranking_loss.rs`: WGSL on wgpu,
//! its burn-ops twin on the CPU).

use super::lm_train::TrainConfig;
use crate::checkpoint::{self, CheckpointConfig, SaveRequest};
use crate::config::ModelConfig;
use crate::data::rankings::{read_rankings, Ranking};
use crate::data::template::{render_prompt, render_response};
use crate::data::tokenizer::Tok;
use crate::model::RewardModel;
use crate::train::clip::clip_global_norm;
use crate::train::guard::{Guard, Verdict};
use crate::train::metrics::{log_line, progress_bar, MetricsWriter};
use crate::train::tensors::ints;
use crate::util::rng::Rng;
use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use super::rm_eval::{rank_stats, score_groups, RankStats};
pub use super::rm_norm::{norm_subset, DEFAULT_NORM_MAX};
pub use super::score::score_file;

/// Defaults of the reward-model stage (batch_size counts prompts).
pub fn default_config() -> TrainConfig {
    TrainConfig {
        steps: 300,
        batch_size: 8,
        lr: 1e-3,
        min_lr_ratio: 0.1,
        warmup: 20,
        weight_decay: 0.0,
        beta2: 0.95,
        grad_clip: 1.0,
        eval_every: 50,
        eval_batches: 64,
        checkpoint_every: 100,
        max_bad_steps: 10,
        seed: 31,
        micro_batches: super::lm_train::default_micro_batches(),
    }
}

/// One ranking, tokenized: `seqs[i]` is `prompt + response_i + <|endoftext|>`, best first.
#[derive(Debug, Clone)]
pub struct TokRanking {
    pub seqs: Vec<Vec<u32>>,
}

/// Tokenizes `prompt + response + <|endoftext|>`, cut to `n_ctx` (prompt cut from the left,
/// then the response from the right; the closing token is kept).
pub fn tokenize_pair(tok: &Tok, prompt: &str, response: &str, n_ctx: usize) -> Result<Vec<u32>> {
    Ok(tokenize_pair_counted(tok, prompt, response, n_ctx)?.0)
}

/// As [`tokenize_pair`], also saying whether the sequence had to be cut.
pub fn tokenize_pair_counted(
    tok: &Tok,
    prompt: &str,
    response: &str,
    n_ctx: usize,
) -> Result<(Vec<u32>, bool)> {
    let p = tok.encode(&render_prompt(prompt))?;
    let mut r = tok.encode(&render_response(response))?;
    let cut = p.len() + r.len() + 1 > n_ctx;
    r.truncate(n_ctx.saturating_sub(2).max(1));
    let keep_p = (n_ctx - 1 - r.len()).min(p.len());
    let mut s = p[p.len() - keep_p..].to_vec();
    s.extend(r);
    s.push(tok.eot);
    Ok((s, cut))
}

/// Tokenizes every ranking; also returns how many sequences were longer than the context and
/// cut (prompt from the left first), so the caller can warn with the count.
pub fn tokenize_rankings(
    tok: &Tok,
    rs: &[Ranking],
    n_ctx: usize,
) -> Result<(Vec<TokRanking>, usize)> {
    let mut cut = 0;
    let mut out = Vec::with_capacity(rs.len());
    for r in rs {
        let mut seqs = Vec::with_capacity(r.responses.len());
        for x in &r.responses {
            let (s, c) = tokenize_pair_counted(tok, &r.prompt, x, n_ctx)?;
            cut += usize::from(c);
            seqs.push(s);
        }
        out.push(TokRanking { seqs });
    }
    Ok((out, cut))
}

/// The warning printed when sequences were cut to the context.
pub fn warn_cut(stage: &str, cut: usize, total: usize, n_ctx: usize) {
    if cut > 0 {
        eprintln!(
            "{stage}: warning: {cut} of {total} prompt + response sequences were longer than the \
             context ({n_ctx} tokens) and were cut, the prompt from the left"
        );
    }
}

/// Right-pads sequences into (ids, lens); `pad` fills the tail.
pub fn pad_batch(seqs: &[&Vec<u32>], pad: u32) -> (Vec<i64>, usize, Vec<usize>) {
    let t = seqs.iter().map(|s| s.len()).max().unwrap_or(1);
    let mut ids = vec![pad as i64; seqs.len() * t];
    for (r, s) in seqs.iter().enumerate() {
        for (j, &x) in s.iter().enumerate() {
            ids[r * t + j] = x as i64;
        }
    }
    (ids, t, seqs.iter().map(|s| s.len()).collect())
}

/// Rewards of every response of `group` (prompt-major), in one forward. → (N,), ks
pub fn group_rewards(
    model: &RewardModel,
    group: &[&TokRanking],
    pad: u32,
    device: &Device,
) -> (Tensor<1>, Vec<usize>) {
    let seqs: Vec<&Vec<u32>> = group.iter().flat_map(|r| r.seqs.iter()).collect();
    let (ids, t, lens) = pad_batch(&seqs, pad);
    let ks = group.iter().map(|r| r.seqs.len()).collect();
    (
        model.forward(ints(&ids, [seqs.len(), t], device), &lens),
        ks,
    )
}

pub struct RmJob {
    pub init: PathBuf,
    pub data: PathBuf,
    pub out: PathBuf,
    pub train: TrainConfig,
    /// Fraction of PROMPTS held out (all of a prompt's pairs stay on one side).
    pub val_fraction: f64,
    pub skip_invalid: bool,
    /// Responses whose mean score is shifted to 0 after training (default: the training responses).
    pub norm_samples: Option<PathBuf>,
    /// Score at most this many of them, one per prompt in turn ([`norm_subset`]); 0: all.
    pub norm_max: usize,
    /// Trunk dropout while training; scoring and the saved config never use it.
    pub dropout: f64,
    pub resume: bool,
}

/// Default [`RmJob::dropout`]: GPT-2's 0.1.
pub const DEFAULT_DROPOUT: f64 = 0.1;

/// Summary written as `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RmSummary {
    pub steps: usize,
    pub train_prompts: usize,
    pub heldout_prompts: usize,
    pub skipped_records: usize,
    pub first_eval: RankStats,
    pub final_eval: RankStats,
    pub reward_bias: f64,
    /// Training steps skipped by the non-finite guard.
    #[serde(default)]
    pub skipped_steps: usize,
    /// Sequences run through the model per training step (= Σ K of a batch: one forward each).
    pub sequences_per_step: f64,
    pub seconds: f64,
}

pub fn run(job: RmJob, device: &Device) -> Result<RmSummary> {
    let t0 = std::time::Instant::now();
    let (rankings, report) = read_rankings(&job.data, job.skip_invalid)?;
    if !report.skipped.is_empty() {
        eprintln!(
            "rm: skipped {} invalid records of {}: {}",
            report.skipped.len(),
            job.data.display(),
            report
                .skipped
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    // a language model gives the trunk (fresh head); a reward model is trained further (later
    // rounds of the pipeline retrain the previous RM on new rankings)
    let from_rm = checkpoint::kind_of(&job.init)? == "rm";
    let sft = if from_rm {
        let r = checkpoint::load_rm(&job.init, device)?;
        checkpoint::Loaded {
            dir: r.dir,
            model: r.model.transformer,
            config: r.config,
            tok: r.tok,
        }
    } else {
        checkpoint::load_lm(&job.init, device)?
    };
    let mut mcfg = sft.config.model.clone();
    // the training copy's dropout passes the model's own checks
    ModelConfig {
        dropout: job.dropout,
        ..mcfg.clone()
    }
    .validate()
    .context("rm --dropout")?;
    mcfg.dropout = 0.0; // saved config: a reward must not depend on a dropout mask
    let tok = sft.tok.clone();
    let (mut groups, cut) = tokenize_rankings(&tok, &rankings, mcfg.n_ctx)?;
    let n_seqs = groups.iter().map(|g| g.seqs.len()).sum();
    warn_cut("rm", cut, n_seqs, mcfg.n_ctx);
    let mut rng = Rng::new(job.train.seed ^ 0xa11ce);
    rng.shuffle(&mut groups);
    let n_val = ((groups.len() as f64 * job.val_fraction).round() as usize).max(1);
    if groups.len() <= n_val {
        bail!(
            "{}: {} prompts are too few to hold {n_val} out",
            job.data.display(),
            groups.len()
        );
    }
    let val = groups.split_off(groups.len() - n_val);
    eprintln!(
        "rm: {} train / {} held-out prompts (K = {}..{})",
        groups.len(),
        val.len(),
        rankings
            .iter()
            .map(|r| r.responses.len())
            .min()
            .unwrap_or(0),
        rankings
            .iter()
            .map(|r| r.responses.len())
            .max()
            .unwrap_or(0)
    );
    std::fs::create_dir_all(&job.out)?;
    crate::config::save_json(&job.train, &job.out.join("stage.json"))?;
    let cfg = &job.train;
    device.seed(cfg.seed);
    let mut model = if from_rm {
        checkpoint::load_weights(
            RewardModel::new(&mcfg, device),
            &sft.dir.join("model.safetensors"),
        )?
    } else {
        let trunk = checkpoint::load_weights(
            crate::model::Gpt::new(&mcfg, device),
            &sft.dir.join("model.safetensors"),
        )?;
        RewardModel::from_trunk(trunk, device)
    };
    let mut optim = cfg.optimizer();
    let mut state = cfg.initial_state();
    let ckpt_cfg = CheckpointConfig {
        kind: "rm".into(),
        stage: "rm".into(),
        model: mcfg.clone(),
        reward_bias: None,
    };
    let mut guard = Guard::new("rm", cfg.max_bad_steps)?;
    if job.resume {
        if let Ok(dir) = checkpoint::resolve(&job.out) {
            let loaded = checkpoint::load_rm(&dir, device)?;
            checkpoint::check_resumable(&dir, &loaded.config.model, &mcfg)?;
            (model, optim, state) = checkpoint::load_resume(&dir, loaded.model, optim)?;
            guard.saved(&dir, state.step);
            eprintln!("rm: resuming from {} at step {}", dir.display(), state.step);
        }
    }
    let sched = cfg.schedule();
    let cols = [
        "loss/train",
        "rm/accuracy_train",
        "loss/eval",
        "rm/accuracy",
        "rm/margin",
        "rm/reward_mean",
        "rm/reward_std",
        "lr",
        "grad_norm",
    ];
    let mut metrics = MetricsWriter::open(
        &job.out,
        &cols,
        if state.step > 0 {
            Some(state.step)
        } else {
            None
        },
    )?;
    let pad = tok.eot;
    let eval = |m: &RewardModel| -> Result<RankStats> {
        let (r, ks) = score_groups(
            &m.valid(),
            &val[..val.len().min(cfg.eval_batches * cfg.batch_size)],
            pad,
            cfg.batch_size,
            device,
        )?;
        Ok(rank_stats(&r, &ks))
    };
    let first_eval = eval(&model)?;
    let ad = device.clone().autodiff();
    // dropout only in the training copy: the saved config keeps 0 (a reward must not depend on
    // a dropout mask), and `eval` scores through `valid()`, which has none
    let mut model = model.with_dropout(job.dropout).train();
    let pb = progress_bar(cfg.steps as u64, "rm");
    pb.set_position(state.step as u64);
    let (mut last_eval, mut seqs, mut n_steps) = (first_eval.clone(), 0usize, 0usize);
    while state.step < cfg.steps {
        let step = state.step;
        let group: Vec<&TokRanking> = (0..cfg.batch_size.min(groups.len()))
            .map(|_| &groups[state.rng.below(groups.len())])
            .collect();
        let out = super::rm_step::rm_step(&model, &group, pad, cfg, step, &guard, &ad)?;
        seqs += out.rewards.len();
        n_steps += 1;
        let train_stats = rank_stats(&out.rewards, &out.ks);
        let (loss_v, mut grads) = (out.loss, out.grads);
        let norm = clip_global_norm(&model, &mut grads, cfg.grad_clip);
        match guard.check(step, loss_v, norm)? {
            Verdict::Apply => model = optim.step(sched.at(step), model, grads),
            Verdict::Skip(msg) => log_line(&pb, msg),
        }
        state.step += 1;
        let is_last = state.step == cfg.steps;
        let ev = if state.step.is_multiple_of(cfg.eval_every.max(1)) || is_last {
            last_eval = eval(&model)?;
            Some(last_eval.clone())
        } else {
            None
        };
        let e = ev.unwrap_or(RankStats {
            loss: f64::NAN,
            accuracy: f64::NAN,
            margin: f64::NAN,
            reward_mean: f64::NAN,
            reward_std: f64::NAN,
        });
        metrics.row(
            state.step,
            &[
                loss_v,
                train_stats.accuracy,
                e.loss,
                e.accuracy,
                e.margin,
                e.reward_mean,
                e.reward_std,
                sched.at(step),
                norm,
            ],
        )?;
        pb.set_message(format!(
            "loss {loss_v:.3} held-out acc {:.3}",
            last_eval.accuracy
        ));
        pb.inc(1);
        state.finished = is_last;
        if state.step.is_multiple_of(cfg.checkpoint_every.max(1)) && !is_last {
            let v = model.valid();
            let dir = checkpoint::save(SaveRequest {
                dir: &job.out,
                model: &v,
                config: &ckpt_cfg,
                tok: &tok,
                optim: Some(&optim),
                state: &state,
            })?;
            guard.saved(&dir, state.step);
        }
    }
    pb.finish_and_clear();
    // normalise: shift rewards so the normalisation responses score 0 on average
    let model = model.valid();
    let norm_groups = match &job.norm_samples {
        Some(p) => {
            let samples = crate::data::formats::read_samples(p)?;
            let rs: Vec<Ranking> = samples
                .into_iter()
                .filter(|s| !s.responses.is_empty())
                .map(|s| Ranking {
                    prompt: s.prompt,
                    responses: s.responses,
                })
                .collect();
            tokenize_rankings(&tok, &rs, mcfg.n_ctx)?.0
        }
        None => groups.clone(),
    };
    let norm_groups = norm_subset(&norm_groups, job.norm_max);
    let (r, _) = score_groups(&model, &norm_groups, pad, cfg.batch_size, device)?;
    let bias = -(r.iter().map(|&x| x as f64).sum::<f64>() / r.len().max(1) as f64);
    let final_cfg = CheckpointConfig {
        reward_bias: Some(bias),
        ..ckpt_cfg
    };
    checkpoint::save(SaveRequest {
        dir: &job.out,
        model: &model,
        config: &final_cfg,
        tok: &tok,
        optim: Some(&optim),
        state: &state,
    })?;
    let summary = RmSummary {
        steps: state.step,
        train_prompts: groups.len(),
        heldout_prompts: val.len(),
        skipped_records: report.skipped.len(),
        first_eval,
        final_eval: last_eval,
        reward_bias: bias,
        skipped_steps: guard.skipped(),
        sequences_per_step: if n_steps > 0 {
            seqs as f64 / n_steps as f64
        } else {
            f64::NAN
        },
        seconds: t0.elapsed().as_secs_f64(),
    };
    crate::config::save_json(&summary, &job.out.join("summary.json"))?;
    Ok(summary)
}
