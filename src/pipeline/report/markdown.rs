//! `report.md`: the text of a run's report, from what [`super::inputs::read_run`] found and the
//! plots already drawn. Sections whose inputs are missing are left out.

use super::inputs::{ConfigFile, RunInputs, SidePair};
use super::targets::{pipeline_seconds, ppl_increase, targets};
use crate::data::template::{display_prompt, is_conversation};
use crate::eval::guards::WordGrowth;
use crate::eval::interval::Verdict;
use crate::eval::{EvalReport, ModelEval};
use serde::Serialize;
use std::fmt::Write;

/// Text safe inside a markdown table cell: one line, pipes escaped.
pub fn cell(s: &str) -> String {
    s.trim().replace('\n', " ").replace('|', "\\|")
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "—".into())
}

fn targets_section(s: &mut String, inp: &RunInputs) {
    let _ = writeln!(s, "## Targets\n");
    let _ = writeln!(
        s,
        "| target | goal | measured | result |\n|---|---|---|---|"
    );
    for t in targets(inp) {
        let res = match t.verdict {
            Some(Verdict::Pass) => "pass",
            Some(Verdict::Unclear) => "unclear",
            Some(Verdict::Fail) => "FAIL",
            None => "—",
        };
        let _ = writeln!(s, "| {} | {} | {} | {res} |", t.what, t.goal, t.measured);
    }
    let _ = writeln!(
        s,
        "\n[lo, hi]: the 95% interval over held-out prompts (bootstrap); a target with one passes \
         only when the whole interval clears it, and is unclear when the interval straddles it."
    );
    s.push('\n');
}

/// A setting as `pipeline.json` writes it (numbers as JSON numbers: `0.0`, `1e-5`).
fn json<T: Serialize>(x: &T) -> String {
    serde_json::to_string(x).unwrap_or_default()
}

fn config_section(s: &mut String, c: &ConfigFile) {
    let cfg = &c.cfg;
    let _ = writeln!(s, "## Configuration\n");
    let _ = writeln!(s, "| setting | value |\n|---|---|");
    // the tokenizer is trained in the run: its size is `vocab_size`, the model's is left at 0
    let m = &cfg.model;
    let model = format!(
        "{} layers × {} wide, {} heads, context {}, vocabulary {}",
        m.n_layer, m.n_embd, m.n_head, m.n_ctx, cfg.vocab_size
    );
    let mut rows = match &cfg.base {
        None => vec![("preset", cfg.preset.clone()), ("model", model)],
        Some(b) => vec![
            ("base", b.display().to_string()),
            (
                "model",
                format!(
                    "the base's (base/config.json), context cut to {}",
                    cfg.base_ctx
                ),
            ),
        ],
    };
    if let Some(l) = &cfg.lora {
        let targets: Vec<String> = l.targets.iter().map(json).collect();
        rows.push((
            "lora",
            format!(
                "rank {}, α {}, {}",
                l.rank,
                json(&l.alpha),
                targets.join(",")
            ),
        ));
    }
    let pretrain = cfg.base.is_none().then_some(("pretrain", &cfg.pretrain));
    for (stage, t) in pretrain
        .into_iter()
        .chain([("sft", &cfg.sft), ("rm", &cfg.rm)])
    {
        let v = format!(
            "{} steps, batch {}, lr {}",
            t.steps,
            t.batch_size,
            json(&t.lr)
        );
        rows.push((stage, v));
    }
    // PPO's settings have their own names (`PpoConfig`): iterations of episodes, β, γ_ptx
    let p = &cfg.ppo;
    let cap = p
        .reward_clip
        .map_or_else(|| "none".to_string(), |c| json(&c));
    let v = format!(
        "{} iterations × {} episodes (minibatch {}), policy lr {}, β {}, γ_ptx {}, score cap {cap}",
        p.steps,
        p.rollout_batch,
        p.minibatch,
        json(&p.policy_lr),
        json(&p.kl_coef),
        json(&p.ptx_coef),
    );
    rows.push(("ppo", v));
    rows.extend([
        ("k", cfg.k.to_string()),
        ("labeler_noise", json(&cfg.labeler_noise)),
        ("sample_prompts", cfg.sample_prompts.to_string()),
        ("seed", cfg.seed.to_string()),
    ]);
    for (k, v) in rows {
        let _ = writeln!(s, "| {k} | {} |", cell(&v));
    }
    let _ = writeln!(
        s,
        "\n<details><summary>pipeline.json</summary>\n\n```json\n{}\n```\n</details>\n",
        c.pretty
    );
}

fn times_section(s: &mut String, inp: &RunInputs) {
    let _ = writeln!(
        s,
        "## Stage times\n\n| stage | seconds | peak memory (host RSS) | |\n|---|---|---|---|"
    );
    for t in &inp.timings {
        let note = match (t.is_ablation(), t.skipped) {
            (true, true) => "ptx ablation, not counted in the total; already done, skipped",
            (true, false) => "ptx ablation, not counted in the total",
            (false, true) => "already done, skipped",
            (false, false) => "",
        };
        let peak = t
            .peak_rss_mib
            .map_or_else(|| "—".to_string(), |m| format!("{:.2} GB", m / 1024.0));
        let _ = writeln!(
            s,
            "| {} | {:.1} | {peak} | {note} |",
            cell(&t.name),
            t.seconds
        );
    }
    if let Some((total, _)) = pipeline_seconds(inp) {
        let _ = writeln!(
            s,
            "| **total** | **{total:.1}** | | {:.1} min |",
            total / 60.0
        );
    }
    s.push('\n');
}

fn eval_section(s: &mut String, e: &EvalReport, noptx: Option<&EvalReport>) {
    let _ = writeln!(s, "## Evaluation: PPO (policy) vs SFT (baseline)\n");
    let _ = writeln!(
        s,
        "{} held-out prompts, {} response(s) per prompt and model.\n",
        e.prompts, e.samples_per_prompt
    );
    model_table(s, e);
    summary_lines(s, e);
    word_growth_table(s, &e.top_word_growth);
    tax_table(s, e, noptx);
    s.push('\n');
}

/// The measurements of one model's samples: (name, value, decimals).
fn model_rows(m: &ModelEval) -> [(&'static str, Option<f64>, usize); 8] {
    [
        ("labeler score (VADER compound)", Some(m.labeler_score), 3),
        ("RM score", m.rm_score, 3),
        ("held-out perplexity", Some(m.heldout_ppl), 2),
        (
            "fluency perplexity (under the pretrained model)",
            m.fluency_ppl,
            2,
        ),
        ("distinct-1", Some(m.distinct_1), 3),
        ("distinct-2", Some(m.distinct_2), 3),
        (
            "mean response length (tokens)",
            Some(m.mean_response_tokens),
            1,
        ),
        ("empty responses", Some(m.empty_responses as f64), 0),
    ]
}

/// PPO's and SFT's measurements side by side.
fn model_table(s: &mut String, e: &EvalReport) {
    let _ = writeln!(s, "| measure | PPO | SFT |\n|---|---|---|");
    let rows = model_rows(&e.policy)
        .into_iter()
        .zip(model_rows(&e.baseline));
    for ((name, p, d), (_, b, _)) in rows {
        let _ = writeln!(s, "| {name} | {} | {} |", opt(p, d), opt(b, d));
    }
}

/// Win rates, KL and the pretrained model's perplexity, one bullet each.
fn summary_lines(s: &mut String, e: &EvalReport) {
    let w = &e.win_rate;
    let _ = writeln!(
        s,
        "\n- win rate of PPO over SFT (sentiment labeler, ties count half): **{:.3}** \
         ({} wins, {} ties, {} losses)",
        w.rate, w.wins, w.ties, w.losses
    );
    if let Some(r) = &e.rm_win_rate {
        let _ = writeln!(s, "- win rate by the reward model: {:.3}", r.rate);
    }
    if let Some(r) = &e.conversation_win_rate {
        let _ = writeln!(
            s,
            "- win rate on the {} conversation prompts alone: {:.3}",
            r.wins + r.ties + r.losses,
            r.rate
        );
    }
    let _ = writeln!(
        s,
        "- KL(PPO ‖ SFT): **{:.2}** nats per sequence ({:.4} per token)",
        e.kl_nats_per_seq, e.kl_nats_per_token
    );
    if let Some(l) = &e.rm_length_effect {
        let _ = writeln!(s, "- {}", crate::eval::table::length_line(l));
    }
    if let Some(p) = e.pretrained_heldout_ppl {
        let _ = writeln!(s, "- pretrained model's held-out perplexity: {p:.2}");
    }
}

/// The words whose share grew most (left out when there are none).
fn word_growth_table(s: &mut String, words: &[WordGrowth]) {
    if words.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nWords whose share grew most from SFT to PPO samples (reward hacking shows here):\n"
    );
    let _ = writeln!(
        s,
        "| word | SFT count | PPO count | SFT share | PPO share | growth |\n\
         |---|---|---|---|---|---|"
    );
    for g in words {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {:.2}% | {:.2}% | {:.2} pp |",
            cell(&g.word),
            g.baseline_count,
            g.policy_count,
            100.0 * g.baseline_freq,
            100.0 * g.policy_freq,
            100.0 * g.growth
        );
    }
}

/// Held-out perplexity SFT → PPO with ptx, and without when that run exists.
fn tax_table(s: &mut String, e: &EvalReport, noptx: Option<&EvalReport>) {
    let _ = writeln!(s, "\n### Alignment tax (held-out perplexity)\n");
    let _ = writeln!(s, "| run | SFT | PPO | increase |\n|---|---|---|---|");
    for (name, v) in [("with ptx", Some(e)), ("without ptx", noptx)] {
        if let Some(v) = v {
            let (d, b, p) = ppl_increase(v);
            let _ = writeln!(s, "| {name} | {b:.2} | {p:.2} | {d:+.2} |");
        }
    }
}

fn samples_section(s: &mut String, inp: &RunInputs, max: usize) {
    let (conversations, single): (Vec<&SidePair>, Vec<&SidePair>) =
        inp.samples.iter().partition(|p| is_conversation(&p.prompt));
    let _ = writeln!(
        s,
        "## Samples: SFT vs PPO\n\n| prompt | SFT | PPO |\n|---|---|---|"
    );
    for p in single.into_iter().take(max) {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            cell(&p.prompt),
            cell(&p.baseline),
            cell(&p.policy)
        );
    }
    s.push('\n');
    if conversations.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## Conversations: SFT vs PPO\n\nThe history, then each model's next turn.\n\n\
         | conversation | SFT | PPO |\n|---|---|---|"
    );
    for p in conversations.into_iter().take(max) {
        let history: Vec<String> = display_prompt(&p.prompt).lines().map(cell).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            history.join("<br>"),
            cell(&p.baseline),
            cell(&p.policy)
        );
    }
    s.push('\n');
}

/// The whole report. `plots` are (caption, path relative to the run directory), `frontier_plot`
/// the frontier's path.
pub fn render(
    inp: &RunInputs,
    title: &str,
    plots: &[(String, String)],
    frontier_plot: Option<&str>,
) -> String {
    let mut s = format!("# Run report: {title}\n\n");
    targets_section(&mut s, inp);
    if let Some(c) = &inp.config {
        config_section(&mut s, c);
    }
    if !inp.timings.is_empty() {
        times_section(&mut s, inp);
    }
    if let Some(e) = &inp.eval {
        eval_section(&mut s, e, inp.eval_noptx.as_ref());
    }
    if let Some(f) = &inp.frontier {
        super::frontier::section(&mut s, f, frontier_plot);
    }
    if !plots.is_empty() {
        let _ = writeln!(s, "## Training curves\n");
        for (caption, path) in plots {
            let _ = writeln!(s, "### {caption}\n\n![{caption}]({path})\n");
        }
    }
    if !inp.samples.is_empty() {
        samples_section(&mut s, inp, 5);
    }
    s
}
