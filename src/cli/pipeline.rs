//! Flags of `rlhf pipeline` (kept beside `cli.rs` to keep each file short).

use super::DeviceArg;
use crate::labeler::LabelerKind;
use crate::pipeline::{BaseSize, PipelineConfig};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PipelineArgs {
    /// Model preset (tiny finishes in minutes on a laptop CPU; small is the default job). With
    /// --base the model is the base's: tiny then sizes a quick check, any other preset the
    /// real-model job.
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// The decoder family to pretrain: gpt2 (the presets'), or llama (the preset's shape as a
    /// Llama: RMSNorm, rotary positions, SwiGLU, half as many key/value heads as heads).
    #[arg(long, value_enum)]
    pub arch: Option<crate::config::Arch>,
    /// Start from this model instead of pretraining one: a GGUF file (SmolLM2, Qwen2.5, Llama
    /// 3.2), a Hugging Face directory or a checkpoint. The tokenizer and pretraining stages are
    /// skipped; SFT, sampling, the RM, PPO-ptx (ptx on the bundled novels, in the model's
    /// tokens), eval and the report run on it, prompts in its chat template. The job is sized
    /// for the device: on the CPU 30 SFT steps, 4 responses to each of 192 prompts, 40 RM steps,
    /// 20 PPO iterations of 32 episodes, a 256-token context (under an hour for SmolLM2-135M on
    /// 2 cores); on a GPU 200, 6 × all prompts, 300, 60 of 64, 512 tokens.
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Run directory (default runs/<UTC timestamp>); rerun on it to skip finished stages and
    /// resume an interrupted one.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The assets directory (default ./assets, or the one the binary was built from).
    #[arg(long)]
    pub assets: Option<PathBuf>,
    /// Responses per prompt to sample for labeling (2 to 9).
    #[arg(short = 'k', long, value_parser = super::ranges::responses_per_prompt)]
    pub k: Option<usize>,
    /// Rounds of sample → label → RM → PPO; round r ≥ 2 samples from round r−1's policy,
    /// retrains its reward model and runs PPO again from its policy (in `round<r>/`).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Who ranks the samples: the simulated sentiment labeler (unattended), or you at the
    /// terminal (the run waits for you; rerun the same command to continue a session).
    #[arg(long, value_enum)]
    pub labeler: Option<LabelerKind>,
    /// Bradley–Terry temperature of the simulated labeler (0: exact sentiment order).
    #[arg(long)]
    pub labeler_noise: Option<f64>,
    /// PPO pretraining-mix coefficient (0: plain PPO).
    #[arg(long)]
    pub ptx_coef: Option<f64>,
    /// PPO KL coefficient β, in RM sd per nat.
    #[arg(long)]
    pub kl_coef: Option<f32>,
    /// PPO iterations.
    #[arg(long)]
    pub ppo_steps: Option<usize>,
    /// Pretraining steps (fewer for a quick try).
    #[arg(long)]
    pub pretrain_steps: Option<usize>,
    /// SFT steps.
    #[arg(long)]
    pub sft_steps: Option<usize>,
    /// Reward-model steps.
    #[arg(long)]
    pub rm_steps: Option<usize>,
    /// Also run the last PPO without the pretraining mix (`ppo_noptx/`) and evaluate it
    /// (`eval_noptx/`): the report then shows the alignment tax with and without ptx.
    #[arg(long)]
    pub ptx_ablation: bool,
    /// Also run these methods beside PPO and put them on one reward–KL frontier
    /// (`frontier/frontier.json`, a table and plot in report.md): `bon` (best-of-n from SFT,
    /// n = 2 … 64), `rloo` (RLOO with the job's PPO settings, `rloo/`), `dpo` (DPO on the job's
    /// rankings, `dpo/`). Every policy, PPO's included, is evaluated at temperature 1
    /// (`frontier/eval_*`). Comma-separated; rerun on a finished --out to add them to it.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub compare: Vec<crate::pipeline::frontier::Method>,
    /// Seed of the whole job: every stage's seed (pretraining, SFT, sampling, reward model, PPO,
    /// evaluation) is drawn from it. Without it each stage keeps its own default seed, those of
    /// the measured default job.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run every op as its reference twin (plain burn ops) instead of the fused kernels (WGSL on
    /// a GPU, fused loops on the CPU), on any device. Without it a GPU run first checks the
    /// kernels against their twins on the adapter (as `rlhf doctor` does) and stops if they
    /// disagree.
    #[arg(long)]
    pub no_kernels: bool,
    #[command(flatten)]
    pub recompute: super::RecomputeArg,
    /// LoRA for the whole job: SFT trains adapters on the frozen base, and the RM, PPO's policy
    /// and value model and DPO train theirs on from SFT's.
    #[command(flatten)]
    pub lora: super::LoraArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl PipelineArgs {
    /// The job's settings: the preset's (`PipelineConfig::for_preset`) with every given flag
    /// applied.
    /// With `--base`, the real-model job of `size` (`PipelineConfig::for_base`), or the tiny
    /// job's sizes with `--preset tiny` (a quick check).
    pub fn config(&self, size: BaseSize) -> Result<PipelineConfig> {
        let overrides = crate::config::ModelOverrides {
            arch: self.arch,
            ..Default::default()
        };
        let mut cfg = match &self.base {
            Some(_) if self.preset != "tiny" => PipelineConfig::for_base(size)?,
            _ => PipelineConfig::for_preset(&self.preset, &overrides)?,
        };
        cfg.base = self.base.clone();
        if let Some(k) = self.k {
            cfg.k = k;
        }
        if let Some(r) = self.rounds {
            anyhow::ensure!(r >= 1, "--rounds must be at least 1");
            cfg.rounds = r;
        }
        if let Some(s) = self.seed {
            cfg.reseed(s);
        }
        if let Some(l) = self.labeler {
            cfg.labeler = l;
        }
        if let Some(v) = self.labeler_noise {
            cfg.labeler_noise = v;
        }
        if let Some(v) = self.ptx_coef {
            cfg.ppo.ptx_coef = v;
        }
        if let Some(v) = self.kl_coef {
            cfg.ppo.kl_coef = v;
        }
        cfg.ptx_ablation = self.ptx_ablation;
        if self.recompute.checkpoint_activations {
            cfg.sft.checkpoint_activations = true;
            cfg.ppo.checkpoint_activations = true;
        }
        if let Some(l) = self.lora.config() {
            l.validate()?;
            cfg = cfg.with_lora(l);
        }
        for m in &self.compare {
            if !cfg.compare.contains(m) {
                cfg.compare.push(*m);
            }
        }
        if let Some(v) = self.ppo_steps {
            cfg.ppo.steps = v;
        }
        for (flag, v, steps) in [
            (
                "--pretrain-steps",
                self.pretrain_steps,
                &mut cfg.pretrain.steps,
            ),
            ("--sft-steps", self.sft_steps, &mut cfg.sft.steps),
            ("--rm-steps", self.rm_steps, &mut cfg.rm.steps),
        ] {
            if let Some(v) = v {
                anyhow::ensure!(v >= 1, "{flag} must be at least 1");
                *steps = v;
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command as Sub};
    use clap::FromArgMatches;

    fn job(args: &[&str], size: BaseSize) -> PipelineConfig {
        let line = ["rlhf", "pipeline"].into_iter().chain(args.iter().copied());
        let m = crate::cli::command().try_get_matches_from(line).unwrap();
        match Cli::from_arg_matches(&m).unwrap().command {
            Sub::Pipeline(a) => a.config(size).unwrap(),
            _ => unreachable!("parsed as pipeline"),
        }
    }

    #[test]
    fn base_picks_the_real_model_job_of_the_device_and_tiny_stays_a_quick_check() {
        let real = |s| PipelineConfig::for_base(s).unwrap();
        for size in [BaseSize::Cpu, BaseSize::Gpu] {
            let c = job(&["--base", "m.gguf"], size);
            assert_eq!(c.sft.steps, real(size).sft.steps);
            assert_eq!(c.ppo.steps, real(size).ppo.steps);
            assert_eq!(c.base_ctx, real(size).base_ctx);
            assert_eq!(c.base.as_deref(), Some(std::path::Path::new("m.gguf")));
        }
        assert_ne!(real(BaseSize::Cpu).sft.steps, real(BaseSize::Gpu).sft.steps);
        let tiny = PipelineConfig::for_preset("tiny", &Default::default()).unwrap();
        let c = job(&["--base", "m.gguf", "--preset", "tiny"], BaseSize::Gpu);
        assert_eq!((c.sft.steps, c.ppo.steps), (tiny.sft.steps, tiny.ppo.steps));
        // without --base the device does not size the job
        let small = PipelineConfig::for_preset("small", &Default::default()).unwrap();
        assert_eq!(job(&[], BaseSize::Gpu).sft.steps, small.sft.steps);
        // flags apply on top of the real-model job
        let c = job(&["--base", "m.gguf", "--sft-steps", "3"], BaseSize::Cpu);
        assert_eq!((c.sft.steps, c.rm.steps), (3, real(BaseSize::Cpu).rm.steps));
    }
}
