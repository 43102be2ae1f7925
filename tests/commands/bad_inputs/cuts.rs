//! Text longer than the context is not an error: a prompt is cut from the left (its end, next
//! to the response, is kept) with a warning that counts the cuts, in `sample`, `sft`, `rm` and
//! `score`; an SFT demonstration keeps the start of its last response and the end of what comes
//! before it.

use super::world::world;
use crate::common;
use crate::fixtures::{ok, rlhf};
use rlhf::data::batching::tokenize_sft;
use rlhf::data::conversation::{Message, Role};
use rlhf::data::formats::SftRecord;
use rlhf::data::pairs::tokenize_pair_split;
use rlhf::data::template::{pieces, render_prompt};
use std::path::Path;

/// A prompt of about 200 tokens, three times the tiny preset's context of 64.
fn long_text() -> String {
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, \
     must be in want of a wife. "
        .repeat(8)
}

fn write_lines(p: &Path, lines: &[serde_json::Value]) {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(p, body).unwrap();
}

/// Runs `rlhf args…` to success; its standard error.
fn run_ok(args: &[&str], paths: &[(&str, &Path)]) -> String {
    let mut c = rlhf();
    c.args(args);
    for (flag, p) in paths {
        c.arg(flag).arg(p);
    }
    ok(&c.output().unwrap())
}

#[test]
fn overlong_prompts_are_cut_from_the_left_with_a_counted_warning() {
    let w = world();
    let d = common::tmp_dir("overlong");
    let long = long_text();
    let prompts = d.join("prompts.jsonl");
    let prompt = |p: &str| serde_json::json!({ "prompt": p });
    write_lines(&prompts, &[prompt("Define: Cat"), prompt(&long)]);
    let samples = d.join("samples.jsonl");
    let err = run_ok(
        &[
            "sample",
            "--device",
            "cpu",
            "-k",
            "2",
            "--max-new-tokens",
            "8",
        ],
        &[
            ("--ckpt", &w.ckpt),
            ("--prompts", &prompts),
            ("--out", &samples),
        ],
    );
    // tiny: n_ctx 64, 8 of them kept for the response → 56 prompt tokens
    assert!(
        err.contains(
            "sample: warning: 1 of 2 prompts are longer than the 56 tokens the context leaves \
             beside --max-new-tokens 8 and were cut from the left"
        ),
        "{err}"
    );
    let read = rlhf::data::formats::read_samples(&samples).unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[1].prompt, long, "the record keeps the whole prompt");
    assert!(read.iter().all(|s| s.responses.len() == 2));

    let cat = |r: &str| serde_json::json!({"prompt": "Define: Cat", "response": r});
    let demos = d.join("sft.jsonl");
    let long_demo = serde_json::json!({"prompt": long, "response": "Yes."});
    write_lines(
        &demos,
        &[cat("A soft machine."), long_demo, cat("A small tiger.")],
    );
    let err = run_ok(
        &[
            "sft",
            "--device",
            "cpu",
            "--steps",
            "1",
            "--batch-size",
            "2",
        ],
        &[
            ("--init", &w.ckpt),
            ("--data", &demos),
            ("--out", &d.join("sft")),
        ],
    );
    assert!(
        err.contains(
            "sft: warning: 1 of 3 demonstrations were longer than the context (64 tokens) \
             and were cut, the prompt from the left"
        ),
        "{err}"
    );

    let rankings = d.join("rankings.jsonl");
    let rank = |p: &str| serde_json::json!({"prompt": p, "responses": ["Yes, it is.", "No."]});
    write_lines(
        &rankings,
        &[rank(&long), rank("Define: Cat"), rank("Define: Dog")],
    );
    let rm = d.join("rm");
    let err = run_ok(
        &["rm", "--device", "cpu", "--steps", "1", "--batch-size", "2"],
        &[("--init", &w.ckpt), ("--data", &rankings), ("--out", &rm)],
    );
    // the long prompt's two sequences of the six
    assert!(
        err.contains(
            "rm: warning: 2 of 6 prompt + response sequences were longer than the context \
             (64 tokens) and were cut, the prompt from the left"
        ),
        "{err}"
    );

    let scores = d.join("scores.jsonl");
    let err = run_ok(
        &["score", "--device", "cpu"],
        &[("--rm", &rm), ("--data", &samples), ("--out", &scores)],
    );
    assert!(
        err.contains(
            "score: warning: 2 of 4 prompt + response sequences were longer than the context \
             (64 tokens) and were cut, the prompt from the left"
        ),
        "{err}"
    );
    let text = std::fs::read_to_string(&scores).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r["rewards"].as_array().unwrap().len() == 2));

    // the cut is from the left: what is kept of the prompt is its end, then the response
    let tok = common::tok();
    let (seq, start, cut) = tokenize_pair_split(&tok, &long, "Yes.", 64).unwrap();
    let prompt = tok.encode(&render_prompt(&long)).unwrap();
    assert!(
        cut && seq.len() == 64 && start > 32,
        "{} {start}",
        seq.len()
    );
    assert!(
        prompt.ends_with(&seq[..start]),
        "the prompt's last {start} tokens"
    );
}

/// The tokens and assistant flags of each piece of `r` (what `tokenize_sft` concatenates).
fn piece_tokens(tok: &rlhf::data::tokenizer::Tok, r: &SftRecord) -> Vec<(Vec<u32>, bool)> {
    pieces(&r.messages)
        .iter()
        .map(|p| {
            let mut ids = tok.encode(&p.text).unwrap();
            if p.assistant {
                ids.push(tok.eot);
            }
            (ids, p.assistant)
        })
        .collect()
}

/// The claim of docs/formats.md ("What is cut when a text is longer than the context"): "A
/// demonstration longer than the context keeps at most half the context of its last response
/// and drops its oldest turns first". With n_ctx 64 an
/// example holds 65 tokens (64 inputs and their shifted targets); the claim holds when the turns
/// before the last response fill the other half. Beside a short prompt the last response keeps
/// what the prompt leaves, more than half: the half is what it keeps at most when the earlier
/// turns need the rest.
#[test]
fn an_overlong_sft_demonstration_keeps_at_most_half_the_context_of_its_last_response() {
    let tok = common::tok();
    let (n_ctx, half) = (64, 32);
    let msg = |role, text: &str| Message::new(role, text);
    let long = long_text();
    // three turns before the last response, each longer than the context's other half
    let conv = SftRecord {
        messages: vec![
            msg(Role::User, &format!("First: {long}")),
            msg(Role::Assistant, &format!("Second: {long}")),
            msg(Role::User, &format!("Third: {long}")),
            msg(Role::Assistant, &long),
        ],
    };
    let single_short_prompt = SftRecord::single("Define: Cat", long.clone());
    let short_reply = SftRecord::single(long.clone(), "Yes.");
    let records = [
        conv.clone(),
        single_short_prompt.clone(),
        short_reply.clone(),
    ];
    let (ex, cut) = tokenize_sft(&tok, &records, n_ctx).unwrap();
    assert_eq!(cut, 3);
    assert!(ex.iter().all(|e| e.tokens.len() == n_ctx + 1));

    // a long history: the last response keeps its first `half` tokens, the rest is the end of
    // the turns before it — the oldest turns are the ones dropped
    let p = piece_tokens(&tok, &conv);
    let (last, before) = p.split_last().unwrap();
    let history: Vec<u32> = before.iter().flat_map(|(ids, _)| ids.clone()).collect();
    assert!(history.len() > 3 * n_ctx && last.0.len() > n_ctx);
    let e = &ex[0];
    let kept = n_ctx + 1 - half;
    assert_eq!(
        e.tokens[kept..],
        last.0[..half],
        "the start of the last response"
    );
    assert_eq!(
        e.tokens[..kept],
        history[history.len() - kept..],
        "the end of the history"
    );
    assert!(
        e.target[kept..].iter().all(|&t| t),
        "the response's tokens are targets"
    );
    // of the three earlier turns only the third (a user turn) is left: no target before it
    assert!(before[2].0.len() >= kept && e.target[..kept].iter().all(|&t| !t));

    // a short prompt: the whole prompt, and the response fills the rest (more than half)
    let p = piece_tokens(&tok, &single_short_prompt);
    let e = &ex[1];
    assert_eq!(e.tokens[..p[0].0.len()], p[0].0[..]);
    let resp = n_ctx + 1 - p[0].0.len();
    assert!(resp > half);
    assert_eq!(e.tokens[p[0].0.len()..], p[1].0[..resp]);

    // a short response after a long prompt: all of the response, with its closing token
    let p = piece_tokens(&tok, &short_reply);
    let e = &ex[2];
    assert!(e.tokens.ends_with(&p[1].0) && *e.tokens.last().unwrap() == tok.eot);
    assert!(p[0].0.ends_with(&e.tokens[..n_ctx + 1 - p[1].0.len()]));
}
