//! `PipelineConfig`: the resolved settings of a pipeline run, with the defaults of each preset;
//! saved as `pipeline.json` in the run directory (and read back by the report).

use super::frontier::Method;
use crate::config::TrainConfig;
use crate::config::{ModelConfig, ModelOverrides};
use crate::labeler::LabelerKind;
use crate::model::generate::SampleConfig;
use crate::stages::dpo::DpoConfig;
use crate::stages::ppo::{Algo, PpoConfig};
use crate::stages::rm;
use anyhow::Result;
use serde::{Deserialize, Serialize};

fn default_base_ctx() -> usize {
    512
}

/// The resolved settings of a pipeline run, saved as `pipeline.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineConfig {
    pub preset: String,
    /// The model the job starts from instead of pretraining its own (`--base`): a checkpoint, a
    /// Hugging Face directory or a GGUF file; None: the preset's model, pretrained on the corpus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<std::path::PathBuf>,
    /// The context a `--base` job works in, in tokens: the imported model's `n_ctx` is cut to it
    /// (prompts, responses, ptx and perplexity windows fit in it), as a real model's own context
    /// (8192 for SmolLM2) makes every window's (T, vocabulary) logits too large for a laptop.
    /// Default 512.
    #[serde(default = "default_base_ctx")]
    pub base_ctx: usize,
    /// The real-model job's size (`--base` without `--preset tiny`): `cpu` or `gpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_size: Option<BaseSize>,
    pub model: ModelConfig,
    /// BPE vocabulary size.
    pub vocab_size: usize,
    pub pretrain: TrainConfig,
    pub sft: TrainConfig,
    pub rm: TrainConfig,
    /// Trunk dropout while training the RM (see `rlhf rm --dropout`). Default 0.1.
    #[serde(default)]
    pub rm_dropout: f64,
    pub ppo: PpoConfig,
    /// Who ranks the samples: `sentiment` (simulated, unattended) or `human` (at the terminal).
    pub labeler: LabelerKind,
    /// Bradley–Terry temperature of the simulated labeler (0: exact sentiment order).
    pub labeler_noise: f64,
    /// Responses sampled per prompt for labeling (InstructGPT: 4 to 9).
    pub k: usize,
    /// Prompts sampled from `assets/prompts.jsonl` (0: all).
    pub sample_prompts: usize,
    pub sampling: SampleConfig,
    /// Rounds of sample → label → RM → PPO (InstructGPT iterated stages 2 and 3). Default 1.
    pub rounds: usize,
    /// Held-out prompts the final evaluation uses (0: all of `assets/eval_prompts.jsonl`).
    pub eval_prompts: usize,
    /// Windows of the held-out novel for perplexity (n_ctx tokens each).
    pub eval_ppl_windows: usize,
    /// Responses per held-out prompt and model in the evaluations: the win rate and KL average
    /// over them, their intervals resample prompts. Default 4 (1 in `pipeline.json` files
    /// written before).
    #[serde(default = "one")]
    pub eval_samples_per_prompt: usize,
    /// Also run the last PPO without ptx (`ppo_noptx/`) and evaluate it (`eval_noptx/`), so the
    /// report shows the alignment tax with and without the pretraining mix. Default off.
    #[serde(default)]
    pub ptx_ablation: bool,
    /// Methods run beside PPO for the reward–KL frontier (`--compare`, `frontier/`). Default
    /// none.
    #[serde(default)]
    pub compare: Vec<Method>,
    /// RLOO's responses per prompt (`--compare rloo`; the rest of its settings are PPO's).
    /// Default 4.
    #[serde(default = "default_rloo_k")]
    pub rloo_k: usize,
    /// DPO's settings (`--compare dpo`): `rlhf dpo`'s defaults; `tiny` shorter.
    #[serde(default)]
    pub dpo: DpoConfig,
    /// LoRA adapters instead of full fine-tuning (`--lora-rank` …): SFT starts them, and every
    /// later stage trains them on (the RM and the value model their own copies, with a head).
    /// Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<crate::config::lora::LoraConfig>,
    pub seed: u64,
}

fn default_rloo_k() -> usize {
    4
}

impl PipelineConfig {
    /// RLOO's settings: PPO's (same β, cap, penalty, rollout size, learning rate, ptx, seed),
    /// with `rloo_k` responses to each of `rollout_batch / rloo_k` prompts per iteration.
    pub fn rloo(&self) -> PpoConfig {
        PpoConfig {
            algo: Algo::Rloo,
            rloo_k: self.rloo_k,
            ..self.ppo.clone()
        }
    }

    /// Every stage's seed drawn from `seed` (`rlhf pipeline --seed`), each its own draw.
    pub fn reseed(&mut self, seed: u64) {
        let mut r = crate::util::rng::Rng::new(seed);
        self.pretrain.seed = r.next_u64();
        self.sft.seed = r.next_u64();
        self.rm.seed = r.next_u64();
        self.ppo.seed = r.next_u64();
        self.seed = r.next_u64();
        // drawn after the others, so adding DPO left the other stages' seeds as they were
        self.dpo.train.seed = r.next_u64();
    }

    /// Defaults per preset: `tiny` runs in a few minutes on 2 CPU cores (for tests), `small` is
    /// the default job.
    pub fn for_preset(preset: &str, overrides: &ModelOverrides) -> Result<Self> {
        let model = ModelConfig::preset(preset)?.with_overrides(overrides)?;
        let (mut pt, mut st, mut rt) = (
            TrainConfig::pretrain(),
            TrainConfig::sft(),
            TrainConfig::rm(),
        );
        let (vocab_size, sample_prompts, max_new) = match preset {
            "tiny" => {
                (pt.steps, pt.batch_size, pt.eval_every, pt.checkpoint_every) = (120, 8, 40, 40);
                (st.steps, st.batch_size, st.eval_every, st.checkpoint_every) = (60, 8, 20, 20);
                (pt.eval_batches, st.eval_batches) = (4, 4);
                (rt.steps, rt.eval_every, rt.checkpoint_every) = (30, 10, 10);
                (512, 16, 24)
            }
            "small" => {
                // measured on the 2-core CPU (docs/tuning.md): SFT's
                // held-out loss is flat after ~150 steps; the RM gains most from more
                // responses (K = 9: 0.71 -> 0.75 held-out accuracy), and 400 steps over them
                (pt.steps, st.steps, rt.steps) =
                    (PRETRAIN_STEPS_SMALL, SFT_STEPS_SMALL, RM_STEPS_SMALL);
                // each held-out RM evaluation scores 900 sequences (~4.5 s): every 100 steps
                // keeps the curve and saves ~20 s of the job's wall time
                rt.eval_every = 100;
                (2048, 0, 48)
            }
            _ => (4096, 300, 64),
        };
        Ok(Self {
            preset: preset.to_string(),
            base: None,
            base_ctx: default_base_ctx(),
            base_size: None,
            model,
            vocab_size,
            pretrain: pt,
            sft: st,
            rm: rt,
            rm_dropout: rm::DEFAULT_DROPOUT,
            ppo: PpoConfig::for_preset(preset),
            labeler: LabelerKind::Sentiment,
            labeler_noise: 0.0,
            // InstructGPT's labelers ranked 4 to 9; more responses per prompt gave the RM
            // more to learn from than more steps did
            k: if preset == "tiny" { 4 } else { 9 },
            sample_prompts,
            sampling: SampleConfig {
                max_new_tokens: max_new,
                ..Default::default()
            },
            rounds: 1,
            eval_prompts: if preset == "tiny" { 32 } else { 0 },
            eval_ppl_windows: if preset == "tiny" { 8 } else { 32 },
            eval_samples_per_prompt: 4,
            ptx_ablation: false,
            compare: Vec::new(),
            rloo_k: default_rloo_k(),
            dpo: dpo_for_preset(preset),
            lora: None,
            seed: 7,
        })
    }
}

/// How large a job on a real model (`--base`) is: sized for the device it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseSize {
    /// A 2-core CPU finishes it with SmolLM2-135M in under an hour (docs/results.md).
    Cpu,
    /// A GPU: more prompts, responses and steps, the full 512-token context.
    Gpu,
}

impl PipelineConfig {
    /// The job on a real model (`rlhf pipeline --base`): SFT, sampling, RM and PPO-ptx sized for
    /// a pretrained 100M–1B model rather than the presets' own (learning rates 20–100 times
    /// smaller than those that train a 1M-parameter model from scratch; fewer, shorter steps, as
    /// each costs a real model's compute). The pretraining settings are unused.
    pub fn for_base(size: BaseSize) -> Result<Self> {
        let mut c = Self::for_preset("small", &ModelOverrides::default())?;
        let gpu = size == BaseSize::Gpu;
        c.base_size = Some(size);
        c.base_ctx = if gpu { 512 } else { 256 };
        // DPO (`--compare dpo`) at the learning rates DPO fine-tunes pretrained models with
        let d = &mut c.dpo.train;
        (d.steps, d.lr, d.warmup) = if gpu { (200, 5e-6, 10) } else { (40, 5e-6, 3) };
        (d.eval_every, d.checkpoint_every) = (d.steps / 2, d.steps / 2);
        let st = &mut c.sft;
        (st.steps, st.batch_size, st.lr, st.warmup) = if gpu {
            (200, 16, 2e-5, 10)
        } else {
            (30, 8, 2e-5, 3)
        };
        (st.eval_every, st.checkpoint_every) = (st.steps / 2, st.steps / 2);
        st.eval_batches = if gpu { 8 } else { 4 };
        let rt = &mut c.rm;
        (rt.steps, rt.lr, rt.warmup) = if gpu { (300, 1e-5, 20) } else { (40, 3e-5, 3) };
        (rt.eval_every, rt.checkpoint_every) = (rt.steps / 2, rt.steps / 2);
        rt.eval_batches = if gpu { 16 } else { 4 };
        // a pretrained trunk was trained without dropout
        c.rm_dropout = 0.0;
        (c.k, c.sample_prompts) = if gpu { (6, 0) } else { (4, 192) };
        c.sampling.max_new_tokens = 40;
        c.ppo = PpoConfig {
            steps: if gpu { 60 } else { 20 },
            rollout_batch: if gpu { 64 } else { 32 },
            minibatch: if gpu { 32 } else { 16 },
            max_new_tokens: 40,
            ptx_batch: if gpu { 4 } else { 1 },
            policy_lr: 2e-5,
            value_lr: 5e-5,
            warmup: 1,
            checkpoint_every: 5,
            ..PpoConfig::default()
        };
        (
            c.eval_prompts,
            c.eval_samples_per_prompt,
            c.eval_ppl_windows,
        ) = if gpu { (0, 4, 32) } else { (32, 2, 8) };
        Ok(c)
    }
}

/// How much higher a real-model job's learning rates are with LoRA than with full fine-tuning:
/// an adapter starts at zero and moves a rank-R slice of each layer, so it is trained at the
/// rates LoRA fine-tunes pretrained models with (PEFT's and TRL's examples: 1e-4 to 2e-4,
/// against 1e-5 to 2e-5 for every weight).
pub const LORA_LR_SCALE: f64 = 5.0;

impl PipelineConfig {
    /// The job with LoRA adapters `l`; a real-model job (`--base`) also takes LoRA's learning
    /// rates ([`LORA_LR_SCALE`] × its own). The presets' rates, for models trained from scratch,
    /// are already high and stay.
    pub fn with_lora(mut self, l: crate::config::lora::LoraConfig) -> Self {
        if self.base_size.is_some() {
            self.sft.lr *= LORA_LR_SCALE;
            self.rm.lr *= LORA_LR_SCALE;
            self.dpo.train.lr *= LORA_LR_SCALE;
            self.ppo.policy_lr *= LORA_LR_SCALE;
            self.ppo.value_lr *= LORA_LR_SCALE;
        }
        self.lora = Some(l);
        self
    }
}

/// DPO's settings in a job: `rlhf dpo`'s defaults, 20 steps for `tiny` (tests).
fn dpo_for_preset(preset: &str) -> DpoConfig {
    let mut d = DpoConfig::default();
    if preset == "tiny" {
        let t = &mut d.train;
        (t.steps, t.eval_every, t.checkpoint_every, t.eval_batches) = (20, 10, 10, 2);
    }
    d
}

/// Pretraining steps of the default (`small`) job: 500 × 16 × 128 = 1.0M tokens, the budget of
/// the TRL baseline docs/results.md compares the job with.
const PRETRAIN_STEPS_SMALL: usize = 500;
/// SFT steps of the default job (its held-out response loss is flat after ~150).
const SFT_STEPS_SMALL: usize = 150;
/// RM steps of the default job: 400 × 8 prompts ≈ 3 passes over its ~1,000 training prompts
/// (held-out accuracy 0.740 at 300 steps, 0.750 at 400 on the default job).
const RM_STEPS_SMALL: usize = 400;

/// Serde's default for settings added after files were written with the single value.
fn one() -> usize {
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds(c: &PipelineConfig) -> [u64; 5] {
        [c.pretrain.seed, c.sft.seed, c.rm.seed, c.ppo.seed, c.seed]
    }

    #[test]
    fn a_job_seed_changes_every_stage_seed_and_only_with_the_flag() {
        let base = PipelineConfig::for_preset("small", &Default::default()).unwrap();
        // the measured default job's seeds
        assert_eq!(seeds(&base), [1337, 2024, 31, 11, 7]);
        let mut a = base.clone();
        a.reseed(1);
        let mut b = base.clone();
        b.reseed(2);
        for (i, (x, y)) in seeds(&a).iter().zip(seeds(&base)).enumerate() {
            assert_ne!(*x, y, "stage seed {i} unchanged by --seed");
        }
        assert_ne!(seeds(&a), seeds(&b));
        let mut again = base.clone();
        again.reseed(1);
        assert_eq!(seeds(&a), seeds(&again), "the same --seed, the same job");
    }

    #[test]
    fn lora_raises_a_real_model_jobs_learning_rates_and_leaves_the_presets() {
        let l = crate::config::lora::LoraConfig::default();
        let lrs = |c: &PipelineConfig| {
            let p = &c.ppo;
            [c.sft.lr, c.rm.lr, c.dpo.train.lr, p.policy_lr, p.value_lr]
        };
        let full = PipelineConfig::for_base(BaseSize::Cpu).unwrap();
        let lora = full.clone().with_lora(l.clone());
        for (a, b) in lrs(&full).iter().zip(lrs(&lora)) {
            assert_eq!(b, a * LORA_LR_SCALE);
        }
        assert_eq!(lora.lora, Some(l.clone()));
        let small = PipelineConfig::for_preset("small", &Default::default()).unwrap();
        assert_eq!(lrs(&small), lrs(&small.clone().with_lora(l)));
    }

    #[test]
    fn a_real_model_job_fine_tunes_gently_and_the_cpu_one_is_the_smaller() {
        let small = PipelineConfig::for_preset("small", &Default::default()).unwrap();
        let cpu = PipelineConfig::for_base(BaseSize::Cpu).unwrap();
        let gpu = PipelineConfig::for_base(BaseSize::Gpu).unwrap();
        for (name, c) in [("cpu", &cpu), ("gpu", &gpu)] {
            // a pretrained model is fine-tuned at a learning rate far below the one that trains
            // the presets' models from scratch
            for (stage, lr, from_scratch) in [
                ("sft", c.sft.lr, small.sft.lr),
                ("rm", c.rm.lr, small.rm.lr),
                ("ppo", c.ppo.policy_lr, small.ppo.policy_lr),
            ] {
                assert!(lr <= from_scratch / 5.0, "{name} {stage} lr {lr}");
            }
            assert_eq!(c.rm_dropout, 0.0, "{name}");
            assert!(c.ppo.validate().is_ok(), "{name}");
            assert!(c.sampling.max_new_tokens <= c.base_ctx / 4, "{name}");
        }
        let counts = |c: &PipelineConfig| {
            let prompts = if c.sample_prompts == 0 {
                usize::MAX
            } else {
                c.sample_prompts
            };
            [
                c.sft.steps,
                c.rm.steps,
                c.ppo.steps,
                c.ppo.rollout_batch,
                c.k,
                prompts,
                c.base_ctx,
            ]
        };
        for (i, (a, b)) in counts(&cpu).iter().zip(counts(&gpu)).enumerate() {
            assert!(*a < b, "setting {i}: the CPU job {a}, the GPU job {b}");
        }
        // the CPU job trains on fewer steps than the default job's (a step costs a real
        // model's compute)
        assert!(cpu.sft.steps < small.sft.steps && cpu.rm.steps < small.rm.steps);
        assert!(cpu.ppo.steps < small.ppo.steps);
    }
}
