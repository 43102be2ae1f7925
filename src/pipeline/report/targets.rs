//! The targets of the default job, checked against a run's measurements: each row says the
//! goal, the measured value and the verdict (or "not measured"). Where the evaluation gives a 95%
//! interval over held-out prompts (RM accuracy, win rate, KL), the verdict reads the interval: a
//! target passes only when the whole interval clears it, is unclear when the interval straddles
//! it, and fails when the whole interval misses it; elsewhere it reads the measured value.

use super::inputs::RunInputs;
use crate::eval::interval::{Interval, Verdict};
use crate::eval::EvalReport;

/// RM held-out pairwise accuracy against the noiseless sentiment labeler.
pub const RM_ACCURACY_MIN: f64 = 0.75;
/// Share of held-out prompts on which PPO beats SFT by the sentiment labeler.
pub const WIN_RATE_MIN: f64 = 0.90;
/// The same for a job on a real model (`--base`): PPO beats the SFT model it started from.
pub const BASE_WIN_RATE_MIN: f64 = 0.5;
/// Wall time of the real-model job sized for the CPU (`--base`, SmolLM2-135M) on the 2-core
/// machine, seconds.
pub const BASE_CPU_SECONDS_MAX: f64 = 60.0 * 60.0;
/// KL(PPO ‖ SFT) in nats per sequence.
pub const KL_MAX: f64 = 5.0;
/// Fluency perplexity of PPO samples relative to SFT samples (under the pretrained model).
pub const FLUENCY_RATIO_MAX: f64 = 1.5;
/// Held-out perplexity increase from SFT to PPO with ptx.
pub const PPL_INCREASE_MAX: f64 = 10.0;
/// Wall time of the whole pipeline on the 2-core development machine without a GPU, seconds:
/// `small` (the default job) must beat the TRL baseline's 15.8 minutes, `tiny` 5 minutes.
pub fn pipeline_seconds_max(preset: &str) -> Option<f64> {
    match preset {
        "small" => Some(15.8 * 60.0),
        "tiny" => Some(300.0),
        _ => None,
    }
}

/// One line of the targets table.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRow {
    pub what: String,
    pub goal: String,
    pub measured: String,
    /// None: not measured (input missing), or nothing to judge.
    pub verdict: Option<Verdict>,
}

fn row(what: &str, goal: String, measured: Option<(String, Verdict)>) -> TargetRow {
    let (measured, verdict) = match measured {
        Some((m, v)) => (m, Some(v)),
        None => ("not measured".to_string(), None),
    };
    TargetRow {
        what: what.to_string(),
        goal,
        measured,
        verdict,
    }
}

/// Pass or fail by a measured value alone (no interval).
fn point(ok: bool) -> Verdict {
    if ok {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

/// Which side of its target a measurement must be on.
#[derive(Debug, Clone, Copy)]
enum Bound {
    AtLeast(f64),
    AtMost(f64),
}

/// A measured value with its interval (when there is one) as the table shows it, and the verdict:
/// by the interval when there is one, else by the value.
fn judged(
    value: f64,
    interval: Option<Interval>,
    digits: usize,
    bound: Bound,
) -> (String, Verdict) {
    let text = format!(
        "{value:.digits$}{}",
        crate::eval::table::interval(interval, digits)
    );
    let verdict = match (interval, bound) {
        (Some(i), Bound::AtLeast(t)) => i.at_least(t),
        (Some(i), Bound::AtMost(t)) => i.at_most(t),
        (None, Bound::AtLeast(t)) => point(value >= t),
        (None, Bound::AtMost(t)) => point(value <= t),
    };
    (text, verdict)
}

/// Held-out perplexity increase (policy − baseline) of an eval.json, with both values.
pub fn ppl_increase(eval: &EvalReport) -> (f64, f64, f64) {
    let (b, p) = (eval.baseline.heldout_ppl, eval.policy.heldout_ppl);
    (p - b, b, p)
}

/// The pipeline's wall time without the optional ptx ablation: (seconds, whether any stage was
/// skipped in the timed run).
pub fn pipeline_seconds(inp: &RunInputs) -> Option<(f64, bool)> {
    let job: Vec<_> = inp.timings.iter().filter(|t| !t.is_ablation()).collect();
    if job.is_empty() {
        return None;
    }
    let s = job.iter().map(|t| t.seconds).sum();
    Some((s, job.iter().any(|t| t.skipped)))
}

/// Every target, in the order of the report.
pub fn targets(inp: &RunInputs) -> Vec<TargetRow> {
    let eval = inp.eval.as_ref();
    let mut v = Vec::new();
    let base_size = inp.config.as_ref().and_then(|c| c.cfg.base_size);
    let win_min = match base_size {
        Some(_) => BASE_WIN_RATE_MIN,
        None => WIN_RATE_MIN,
    };
    let acc = inp.rm.as_ref().and_then(|m| m.last("rm/accuracy"));
    let acc_interval = inp
        .rm_summary
        .as_ref()
        .and_then(|s| s.final_accuracy_interval);
    let mut rm = row(
        "RM held-out pairwise accuracy",
        format!("≥ {RM_ACCURACY_MIN:.2}"),
        acc.map(|a| judged(a, acc_interval, 3, Bound::AtLeast(RM_ACCURACY_MIN))),
    );
    if base_size.is_some() {
        // the real-model job's targets are PPO's over SFT, KL and perplexity
        rm.goal = "— (measured)".into();
        rm.verdict = None;
    }
    v.push(rm);
    v.push(row(
        "PPO win rate over SFT (sentiment labeler, held-out prompts)",
        format!("≥ {win_min:.2}"),
        eval.map(|e| {
            judged(
                e.win_rate.rate,
                e.win_rate_interval,
                3,
                Bound::AtLeast(win_min),
            )
        }),
    ));
    v.push(row(
        "KL(PPO ‖ SFT), nats per sequence",
        format!("≤ {KL_MAX:.1}"),
        eval.map(|e| judged(e.kl_nats_per_seq, e.kl_interval, 2, Bound::AtMost(KL_MAX))),
    ));
    let fl = eval.and_then(|e| e.policy.fluency_ppl.zip(e.baseline.fluency_ppl));
    v.push(row(
        "Fluency: perplexity of PPO samples / SFT samples (pretrained model)",
        format!("≤ {FLUENCY_RATIO_MAX:.1}×"),
        fl.map(|(p, b)| {
            let r = p / b;
            (
                format!("{r:.2}× ({p:.1} / {b:.1})"),
                point(r <= FLUENCY_RATIO_MAX),
            )
        }),
    ));
    let tax = eval.map(ppl_increase);
    v.push(row(
        "Held-out perplexity increase SFT → PPO, with ptx",
        format!("≤ +{PPL_INCREASE_MAX:.0}"),
        tax.map(|(d, b, p)| {
            let ok = d <= PPL_INCREASE_MAX;
            (format!("{d:+.2} ({b:.2} → {p:.2})"), point(ok))
        }),
    ));
    if let Some(no) = inp.eval_noptx.as_ref().map(ppl_increase) {
        v.push(row(
            "Held-out perplexity increase with ptx vs without",
            "≤ ½ of without".to_string(),
            tax.map(|(d, _, _)| {
                let ok = d <= 0.5 * no.0.max(0.0);
                (format!("{d:+.2} vs {:+.2}", no.0), point(ok))
            }),
        ));
    }
    v.push(wall_time_row(inp));
    v
}

/// The pipeline's wall time against its preset's limit (judged only for a full run of a preset
/// with a limit).
fn wall_time_row(inp: &RunInputs) -> TargetRow {
    let cfg = inp.config.as_ref().map(|c| &c.cfg);
    let preset = cfg.map_or("", |c| c.preset.as_str());
    let base_size = cfg.and_then(|c| c.base_size);
    let limit = match base_size {
        Some(crate::pipeline::BaseSize::Cpu) => Some(BASE_CPU_SECONDS_MAX),
        Some(crate::pipeline::BaseSize::Gpu) => None,
        None => pipeline_seconds_max(preset),
    };
    let goal = match (limit, base_size) {
        (Some(l), Some(_)) => format!("≤ {:.0} min (--base, 2-core CPU)", l / 60.0),
        (Some(l), None) => format!("≤ {:.1} min ({preset} preset, 2-core CPU)", l / 60.0),
        (None, _) => {
            "— (targets exist for the tiny and small presets and --base on the CPU)".to_string()
        }
    };
    let measured = pipeline_seconds(inp).map(|(s, skipped)| {
        let note = if skipped {
            " (stages skipped: not a full run)"
        } else {
            ""
        };
        (
            format!("{:.1} min{note}", s / 60.0),
            point(!skipped && limit.is_some_and(|l| s <= l)),
        )
    });
    let mut r = row("Pipeline wall time", goal, measured);
    if limit.is_none() || pipeline_seconds(inp).is_some_and(|(_, skipped)| skipped) {
        r.verdict = None; // no goal, or not a full run: nothing to judge
    }
    r
}
