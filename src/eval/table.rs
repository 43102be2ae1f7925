//! The readable table `rlhf eval` prints: one row per measurement, policy next to baseline.

use super::{EvalReport, ModelEval};
use std::fmt::Write;

/// A number with `digits` decimals, or "—" when absent.
pub fn num(x: Option<f64>, digits: usize) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "—".to_string(),
    }
}

/// The RM-score gain and the part of it that length explains, flagged when it is most of it.
pub fn length_line(e: &super::length::LengthEffect) -> String {
    let share = match e.share {
        Some(x) => format!("{:.0}%", 100.0 * x),
        None => "—".to_string(),
    };
    let flag = if e.share.is_some_and(|x| x > super::length::MOSTLY_LENGTH) {
        " — mostly length"
    } else {
        ""
    };
    format!(
        "RM gain {:+.3}, of which length explains {:+.3} ({share}: {:+.1} tokens at {:+.4} per \
         token){flag}",
        e.reward_gain, e.explained_by_length, e.length_change, e.slope_per_token
    )
}

/// ` [lo, hi]` (the 95% interval) with `digits` decimals, or nothing when absent.
pub fn interval(i: Option<super::interval::Interval>, digits: usize) -> String {
    match i {
        Some(i) => format!(" [{:.digits$}, {:.digits$}]", i.lo, i.hi),
        None => String::new(),
    }
}

/// The measurement rows: (name, policy's value, baseline's value).
fn model_rows(p: &ModelEval, b: &ModelEval) -> Vec<(&'static str, String, String)> {
    vec![
        (
            "labeler score (VADER compound)",
            num(Some(p.labeler_score), 3),
            num(Some(b.labeler_score), 3),
        ),
        ("RM score", num(p.rm_score, 3), num(b.rm_score, 3)),
        (
            "held-out perplexity",
            num(Some(p.heldout_ppl), 2),
            num(Some(b.heldout_ppl), 2),
        ),
        (
            "fluency ppl (under pretrained)",
            num(p.fluency_ppl, 2),
            num(b.fluency_ppl, 2),
        ),
        (
            "distinct-1",
            num(Some(p.distinct_1), 3),
            num(Some(b.distinct_1), 3),
        ),
        (
            "distinct-2",
            num(Some(p.distinct_2), 3),
            num(Some(b.distinct_2), 3),
        ),
        (
            "mean response tokens",
            num(Some(p.mean_response_tokens), 1),
            num(Some(b.mean_response_tokens), 1),
        ),
        (
            "empty responses",
            p.empty_responses.to_string(),
            b.empty_responses.to_string(),
        ),
    ]
}

/// The table as text (ends with a newline).
pub fn format_table(r: &EvalReport) -> String {
    let (p, b) = (&r.policy, &r.baseline);
    let rows = model_rows(p, b);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "eval: {} held-out prompts × {} responses, policy {} vs baseline {}",
        r.prompts, r.samples_per_prompt, p.checkpoint, b.checkpoint
    );
    let _ = writeln!(s, "  {:<32} {:>10} {:>10}", "", "policy", "baseline");
    for (name, a, c) in rows {
        let _ = writeln!(s, "  {name:<32} {a:>10} {c:>10}");
    }
    let w = &r.win_rate;
    let _ = writeln!(
        s,
        "  win rate of policy over baseline ({}): {:.3}{} ({} wins, {} ties, {} losses)",
        r.labeler,
        w.rate,
        interval(r.win_rate_interval, 3),
        w.wins,
        w.ties,
        w.losses
    );
    if let Some(w) = &r.rm_win_rate {
        let _ = writeln!(
            s,
            "  win rate by the reward model: {:.3} ({} wins, {} ties, {} losses)",
            w.rate, w.wins, w.ties, w.losses
        );
    }
    if let Some(w) = &r.conversation_win_rate {
        let _ = writeln!(
            s,
            "  win rate on the conversation prompts: {:.3} ({} wins, {} ties, {} losses)",
            w.rate, w.wins, w.ties, w.losses
        );
    }
    let _ = writeln!(
        s,
        "  KL(policy ‖ baseline): {:.3}{} nats per sequence ({:.4} per token)",
        r.kl_nats_per_seq,
        interval(r.kl_interval, 3),
        r.kl_nats_per_token
    );
    if let Some(e) = &r.rm_length_effect {
        let _ = writeln!(s, "  {}", length_line(e));
    }
    if let Some(x) = r.pretrained_heldout_ppl {
        let _ = writeln!(s, "  pretrained model held-out perplexity: {x:.2}");
    }
    let _ = writeln!(
        s,
        "  held-out text: {} ({} windows of {} tokens)",
        r.heldout.text, r.heldout.windows, r.heldout.window_tokens
    );
    if !r.top_word_growth.is_empty() {
        let words: Vec<String> = r
            .top_word_growth
            .iter()
            .map(|g| format!("{:?} {:+.1}%", g.word, 100.0 * g.growth))
            .collect();
        let _ = writeln!(s, "  words grown most: {}", words.join(", "));
    }
    s
}
