//! Flags of `rlhf ppo` (kept beside `cli.rs` to keep each file short).

use super::DeviceArg;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PpoArgs {
    /// SFT checkpoint: the policy starts from it and a frozen copy is the KL reference.
    #[arg(long)]
    pub policy: PathBuf,
    /// A different KL reference (e.g. the SFT model when --policy is an earlier PPO policy).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Reward-model checkpoint (`rlhf rm`); also the value model's start.
    #[arg(long, required_unless_present = "reward_token")]
    pub rm: Option<PathBuf>,
    /// Instead of a reward model, reward each occurrence of this token (text that encodes to one
    /// token) in the response: a known reward for checking that PPO optimises what it is given.
    #[arg(long, conflicts_with = "rm")]
    pub reward_token: Option<String>,
    /// Value-model start (an RM checkpoint; default: --rm, or with --reward-token the KL
    /// reference's trunk with a new head).
    #[arg(long)]
    pub value_init: Option<PathBuf>,
    /// Prompts, {"prompt": ...} or a conversation {"messages": [...]} ending with the user's turn
    /// per line (default: the bundled assets/prompts.jsonl).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Pretraining text files for PPO-ptx (default: the bundled Austen training novels). Not
    /// read at all with --ptx-coef 0.
    #[arg(long, num_args = 1..)]
    pub ptx_corpus: Vec<PathBuf>,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Directory of the bundled assets (default: ./assets, or the one the binary was built from).
    #[arg(long)]
    pub assets: Option<PathBuf>,
    /// Method: `ppo` (a value model trained beside the policy, GAE advantages) or `rloo`
    /// (--rloo-k responses per prompt, each one's baseline the mean return of the others, no
    /// value model; Ahmadian et al. 2024).
    #[arg(long, value_enum)]
    pub algo: Option<crate::stages::ppo::Algo>,
    /// RLOO: responses sampled per prompt, at least 2, dividing --rollout-batch.
    #[arg(long)]
    pub rloo_k: Option<usize>,
    /// PPO iterations.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Episodes (responses) per iteration.
    #[arg(long)]
    pub rollout_batch: Option<usize>,
    /// Episodes per gradient step, at most --rollout-batch.
    #[arg(long)]
    pub minibatch: Option<usize>,
    /// Passes over each rollout batch.
    #[arg(long)]
    pub ppo_epochs: Option<usize>,
    /// Policy learning rate.
    #[arg(long)]
    pub policy_lr: Option<f64>,
    /// Value-model learning rate.
    #[arg(long)]
    pub value_lr: Option<f64>,
    /// KL coefficient β per token, in reward-model sd per nat (initial value when --kl-target is
    /// set).
    #[arg(long)]
    pub kl_coef: Option<f32>,
    /// Adapt β so the KL to the reference approaches this many nats per response (none: β stays
    /// fixed).
    #[arg(long)]
    pub kl_target: Option<f32>,
    /// Episodes over which the adaptive β may change by ±20% per unit of KL error (Ziegler et
    /// al.'s horizon; smaller reacts faster).
    #[arg(long)]
    pub kl_horizon: Option<usize>,
    /// Pretraining-mix coefficient γ_ptx; 0 = plain PPO.
    #[arg(long)]
    pub ptx_coef: Option<f64>,
    /// Subtract this from the score of a response that ran into --max-new-tokens without
    /// ending (<|endoftext|>), so PPO cannot win by filling the limit (TRL's
    /// missing_eos_penalty), in reward-model sd; 0 = none (and none with --reward-token unless
    /// given).
    #[arg(long)]
    pub missing_eos_penalty: Option<f32>,
    /// Clip reward-model scores to ±this (a number > 0, in the RM's sd: `rlhf rm` normalises
    /// its scores to mean 0, sd 1); with --reward-token, whose reward is a count, no clip unless
    /// given.
    #[arg(long)]
    pub reward_clip: Option<f32>,
    /// Do not clip the reward-model scores.
    #[arg(long, conflicts_with = "reward_clip")]
    pub no_reward_clip: bool,
    /// Whiten reward-model scores within each rollout batch.
    #[arg(long)]
    pub whiten_rewards: bool,
    /// Rollout sampling temperature (> 0). PPO trains the tempered policy: the log-probs of
    /// the PPO ratio and of the KL penalty are computed at the same temperature.
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Maximum response tokens.
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    /// Checkpoint every this many iterations.
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub recompute: super::RecomputeArg,
    #[command(flatten)]
    pub lora: super::LoraArgs,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl PpoArgs {
    /// The PPO settings: the defaults with every given flag applied.
    pub fn config(&self) -> crate::stages::ppo::PpoConfig {
        let mut c = crate::stages::ppo::PpoConfig::default();
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { c.$f = v; } )* };
        }
        set!(
            algo,
            rloo_k,
            steps,
            rollout_batch,
            minibatch,
            ppo_epochs,
            policy_lr,
            value_lr,
            kl_coef,
            ptx_coef,
            temperature,
            max_new_tokens,
            checkpoint_every,
            seed
        );
        c.checkpoint_activations |= self.recompute.checkpoint_activations;
        if c.minibatch > c.rollout_batch {
            c.minibatch = c.rollout_batch;
        }
        c.kl_target = self.kl_target.or(c.kl_target);
        c.kl_horizon = self.kl_horizon.unwrap_or(c.kl_horizon);
        if self.reward_token.is_some() {
            // a token count is not in RM sd: capping it at 0.9 would stop it below one token,
            // and penalising a missing EOS by 0.9 would weigh 0.9 of a token
            c.reward_clip = None;
            c.missing_eos_penalty = None;
        }
        c.reward_clip = self.reward_clip.or(c.reward_clip);
        if self.no_reward_clip {
            c.reward_clip = None;
        }
        c.missing_eos_penalty = self.missing_eos_penalty.or(c.missing_eos_penalty);
        if c.missing_eos_penalty == Some(0.0) {
            c.missing_eos_penalty = None;
        }
        c.whiten_rewards |= self.whiten_rewards;
        c
    }
}
