//! `report.md`: the text of a run's report, from what [`super::inputs::read_run`] found and the
//! plots already drawn. Sections whose inputs are missing are left out.

use super::inputs::{num_at, RunInputs};
use super::targets::{pipeline_seconds, ppl_increase, targets};
use serde_json::Value;
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
        let res = match t.pass {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "—",
        };
        let _ = writeln!(s, "| {} | {} | {} | {res} |", t.what, t.goal, t.measured);
    }
    s.push('\n');
}

fn config_section(s: &mut String, cfg: &Value) {
    let _ = writeln!(s, "## Configuration\n");
    let g = |p: &[&str]| -> String {
        let mut cur = cfg;
        for k in p {
            match cur.get(k) {
                Some(v) => cur = v,
                None => return "—".into(),
            }
        }
        match cur {
            Value::String(x) => x.clone(),
            other => other.to_string(),
        }
    };
    let _ = writeln!(s, "| setting | value |\n|---|---|");
    // the tokenizer is trained in the run: pipeline.json has its size at the top level and
    // leaves the model's at 0
    let vocab = match g(&["vocab_size"]) {
        v if v == "—" => g(&["model", "vocab_size"]),
        v => v,
    };
    let model = format!(
        "{} layers × {} wide, {} heads, context {}, vocabulary {vocab}",
        g(&["model", "n_layer"]),
        g(&["model", "n_embd"]),
        g(&["model", "n_head"]),
        g(&["model", "n_ctx"]),
    );
    let mut rows = vec![("preset", g(&["preset"])), ("model", model)];
    for stage in ["pretrain", "sft", "rm"] {
        if cfg.get(stage).is_some() {
            let v = format!(
                "{} steps, batch {}, lr {}",
                g(&[stage, "steps"]),
                g(&[stage, "batch_size"]),
                g(&[stage, "lr"])
            );
            rows.push((stage, v));
        }
    }
    if cfg.get("ppo").is_some() {
        // PPO's settings have their own names (`PpoConfig`): iterations of episodes, β, γ_ptx
        let p = |k: &str| g(&["ppo", k]);
        let cap = match p("reward_clip") {
            v if v == "—" || v == "null" => "none".to_string(),
            v => v,
        };
        let v = format!(
            "{} iterations × {} episodes (minibatch {}), policy lr {}, β {}, γ_ptx {}, score cap {cap}",
            p("steps"),
            p("rollout_batch"),
            p("minibatch"),
            p("policy_lr"),
            p("kl_coef"),
            p("ptx_coef"),
        );
        rows.push(("ppo", v));
    }
    for k in ["k", "labeler_noise", "sample_prompts", "seed"] {
        if cfg.get(k).is_some() {
            rows.push((k, g(&[k])));
        }
    }
    for (k, v) in rows {
        let _ = writeln!(s, "| {k} | {} |", cell(&v));
    }
    let pretty = serde_json::to_string_pretty(cfg).unwrap_or_default();
    let _ = writeln!(
        s,
        "\n<details><summary>pipeline.json</summary>\n\n```json\n{pretty}\n```\n</details>\n"
    );
}

fn times_section(s: &mut String, inp: &RunInputs) {
    let _ = writeln!(s, "## Stage times\n\n| stage | seconds | |\n|---|---|---|");
    for t in &inp.timings {
        let note = match (t.is_ablation(), t.skipped) {
            (true, true) => "ptx ablation, not counted in the total; already done, skipped",
            (true, false) => "ptx ablation, not counted in the total",
            (false, true) => "already done, skipped",
            (false, false) => "",
        };
        let _ = writeln!(s, "| {} | {:.1} | {note} |", cell(&t.name), t.seconds);
    }
    if let Some((total, _)) = pipeline_seconds(inp) {
        let _ = writeln!(
            s,
            "| **total** | **{total:.1}** | {:.1} min |",
            total / 60.0
        );
    }
    s.push('\n');
}

fn eval_section(s: &mut String, e: &Value, noptx: Option<&Value>) {
    let _ = writeln!(s, "## Evaluation: PPO (policy) vs SFT (baseline)\n");
    let n = e.get("prompts").and_then(Value::as_u64).unwrap_or(0);
    let _ = writeln!(
        s,
        "{n} held-out prompts, one response per prompt and model.\n"
    );
    let _ = writeln!(s, "| measure | PPO | SFT |\n|---|---|---|");
    let rows: [(&str, &str, usize); 8] = [
        ("labeler score (VADER compound)", "labeler_score", 3),
        ("RM score", "rm_score", 3),
        ("held-out perplexity", "heldout_ppl", 2),
        (
            "fluency perplexity (under the pretrained model)",
            "fluency_ppl",
            2,
        ),
        ("distinct-1", "distinct_1", 3),
        ("distinct-2", "distinct_2", 3),
        ("mean response length (tokens)", "mean_response_tokens", 1),
        ("empty responses", "empty_responses", 0),
    ];
    for (name, key, d) in rows {
        let _ = writeln!(
            s,
            "| {name} | {} | {} |",
            opt(num_at(e, &["policy", key]), d),
            opt(num_at(e, &["baseline", key]), d)
        );
    }
    let w = |k: &str| num_at(e, &["win_rate", k]);
    let _ = writeln!(
        s,
        "\n- win rate of PPO over SFT (sentiment labeler, ties count half): **{}** ({} wins, {} ties, {} losses)",
        opt(w("rate"), 3),
        opt(w("wins"), 0),
        opt(w("ties"), 0),
        opt(w("losses"), 0)
    );
    if let Some(r) = num_at(e, &["rm_win_rate", "rate"]) {
        let _ = writeln!(s, "- win rate by the reward model: {r:.3}");
    }
    let _ = writeln!(
        s,
        "- KL(PPO ‖ SFT): **{}** nats per sequence ({} per token)",
        opt(num_at(e, &["kl_nats_per_seq"]), 2),
        opt(num_at(e, &["kl_nats_per_token"]), 4)
    );
    if let Some(p) = num_at(e, &["pretrained_heldout_ppl"]) {
        let _ = writeln!(s, "- pretrained model's held-out perplexity: {p:.2}");
    }
    if let Some(words) = e.get("top_word_growth").and_then(Value::as_array) {
        if !words.is_empty() {
            let _ = writeln!(s, "\nWords whose share grew most from SFT to PPO samples (reward hacking shows here):\n");
            let _ = writeln!(s, "| word | SFT count | PPO count | SFT share | PPO share | growth |\n|---|---|---|---|---|---|");
            for g in words {
                let f = |k: &str| num_at(g, &[k]);
                let _ = writeln!(
                    s,
                    "| `{}` | {} | {} | {} | {} | {} |",
                    cell(g.get("word").and_then(Value::as_str).unwrap_or("")),
                    opt(f("baseline_count"), 0),
                    opt(f("policy_count"), 0),
                    opt(f("baseline_freq").map(|x| 100.0 * x), 2) + "%",
                    opt(f("policy_freq").map(|x| 100.0 * x), 2) + "%",
                    opt(f("growth").map(|x| 100.0 * x), 2) + " pp"
                );
            }
        }
    }
    let _ = writeln!(s, "\n### Alignment tax (held-out perplexity)\n");
    let _ = writeln!(s, "| run | SFT | PPO | increase |\n|---|---|---|---|");
    let mut tax = |name: &str, v: &Value| {
        if let Some((d, b, p)) = ppl_increase(v) {
            let _ = writeln!(s, "| {name} | {b:.2} | {p:.2} | {d:+.2} |");
        }
    };
    tax("with ptx", e);
    if let Some(v) = noptx {
        tax("without ptx", v);
    }
    s.push('\n');
}

fn samples_section(s: &mut String, inp: &RunInputs, max: usize) {
    let _ = writeln!(
        s,
        "## Samples: SFT vs PPO\n\n| prompt | SFT | PPO |\n|---|---|---|"
    );
    for p in inp.samples.iter().take(max) {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            cell(&p.prompt),
            cell(&p.baseline),
            cell(&p.policy)
        );
    }
    s.push('\n');
}

/// The whole report. `plots` are (caption, path relative to the run directory).
pub fn render(inp: &RunInputs, title: &str, plots: &[(String, String)]) -> String {
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
