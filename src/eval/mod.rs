//! Evaluation of a policy against a baseline (`rlhf eval`): the pure guard arithmetic
//! (`guards`), model measurements (`lm`), and what `eval.json` holds (the types below) and how it
//! is printed (`table`).
//!
//! `eval.json` fields (all numbers are plain JSON numbers; `null` where not measured):
//! - `prompts`: held-out prompts evaluated; `samples_per_prompt`: responses per prompt and model
//!   (the i-th response of the policy is compared with the i-th of the baseline; win rate, KL and
//!   the guards count every response, the intervals resample prompts with all their responses);
//! - `labeler`: the labeler that judged (`"sentiment"`: VADER compound in −1..1);
//! - `win_rate` {`rate`, `wins`, `ties`, `losses`}: policy vs baseline by the labeler, prompt by
//!   prompt, ties count half; `rm_win_rate` the same by the reward model (`null` without `--rm`);
//!   `conversation_win_rate` the labeler's on the conversation prompts alone (`null` if none);
//!   `win_rate_interval` {`lo`, `hi`}: the 95% bootstrap interval over prompts of `win_rate.rate`
//!   ([`interval`]);
//! - `kl_nats_per_seq`: KL(policy ‖ baseline) per response in nats, Monte Carlo over one policy
//!   sample per prompt drawn at temperature 1 (the models' own distributions, as PPO's penalty):
//!   mean over prompts of Σ_t log π_policy(y_t) − log π_baseline(y_t) over the response tokens,
//!   the closing `<|endoftext|>` included when the response ended by itself;
//!   `kl_nats_per_token` the same sum divided by all those tokens; `kl_interval` the 95%
//!   bootstrap interval over prompts of `kl_nats_per_seq`;
//! - `policy`, `baseline` ([`ModelEval`]): `checkpoint`, `labeler_score` (mean VADER compound),
//!   `rm_score` (mean reward, `null` without `--rm`), `heldout_ppl` (perplexity on the held-out
//!   text), `fluency_ppl` (perplexity of the model's samples under `--pretrained`, `null`
//!   without it), `distinct_1`, `distinct_2` (over words, see `guards`), `mean_response_tokens`
//!   (tokenizer tokens, closing token excluded), `empty_responses`;
//! - `pretrained_heldout_ppl`: the pretrained model's held-out perplexity (`null` without it);
//! - `rm_length_effect` ([`length::LengthEffect`]): how much of the policy's RM-score gain its
//!   response length explains (`null` without `--rm`);
//! - `top_word_growth`: up to 10 [`guards::WordGrowth`] {`word`, `baseline_count`,
//!   `policy_count`, `baseline_freq`, `policy_freq`, `growth`}, largest growth first;
//! - `heldout` {`text`, `windows`, `window_tokens`}: what the perplexities were measured on;
//! - `sampling` (temperature, top_k, top_p, max_new_tokens), `seed`, `seconds`.

pub mod bon;
pub mod guards;
pub mod interval;
pub mod length;
pub mod lm;
pub mod table;

use crate::model::generate::SampleConfig;
use serde::{Deserialize, Serialize};

/// Measurements of one model's samples (see the module docs for each field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEval {
    pub checkpoint: String,
    pub labeler_score: f64,
    pub rm_score: Option<f64>,
    pub heldout_ppl: f64,
    pub fluency_ppl: Option<f64>,
    pub distinct_1: f64,
    pub distinct_2: f64,
    pub mean_response_tokens: f64,
    pub empty_responses: usize,
}

/// Where held-out perplexity was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldoutInfo {
    pub text: String,
    pub windows: usize,
    pub window_tokens: usize,
}

/// Everything `rlhf eval` measured; written as `eval.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    pub prompts: usize,
    /// Responses per prompt and model (1 in files written before there could be more).
    #[serde(default = "one")]
    pub samples_per_prompt: usize,
    pub labeler: String,
    pub win_rate: guards::WinRate,
    pub rm_win_rate: Option<guards::WinRate>,
    /// The labeler's win rate on the conversation prompts alone (a history before the user's
    /// turn); `null` when there are none.
    #[serde(default)]
    pub conversation_win_rate: Option<guards::WinRate>,
    /// 95% interval of `win_rate.rate` over prompts (`null` in files written before intervals).
    #[serde(default)]
    pub win_rate_interval: Option<interval::Interval>,
    pub kl_nats_per_seq: f64,
    pub kl_nats_per_token: f64,
    /// 95% interval of `kl_nats_per_seq` over prompts (`null` in files written before intervals).
    #[serde(default)]
    pub kl_interval: Option<interval::Interval>,
    pub policy: ModelEval,
    pub baseline: ModelEval,
    pub pretrained_heldout_ppl: Option<f64>,
    /// The part of the RM-score gain that response length explains (`null` without an RM, and
    /// in files written before it was measured).
    #[serde(default)]
    pub rm_length_effect: Option<length::LengthEffect>,
    pub top_word_growth: Vec<guards::WordGrowth>,
    pub heldout: HeldoutInfo,
    pub sampling: SampleConfig,
    pub seed: u64,
    pub seconds: f64,
}

fn one() -> usize {
    1
}
