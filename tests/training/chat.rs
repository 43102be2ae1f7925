//! `rlhf chat` driven with piped input, as a user would: the second turn sees the first, the KV
//! cache makes a turn run only its new tokens, `/reset` forgets, `/save` writes the messages
//! format, and a history longer than the context loses its oldest turns with a notice.

use crate::common;
use crate::fixtures;

use burn::prelude::*;
use fixtures::{ok, rlhf, s};
use rlhf::checkpoint;
use rlhf::config::ModelConfig;
use rlhf::data::template::render_prompt;
use rlhf::model::generate::{generate, SampleConfig};
use rlhf::model::{InitRng, Lm};
use rlhf::util::rng::Rng;
use std::path::{Path, PathBuf};

/// A freshly initialised tiny model (its greedy replies depend on every token of context and
/// never stop early), saved as a checkpoint with the test tokenizer.
fn checkpoint(dir: &Path) -> PathBuf {
    let tok = common::tok();
    let mut cfg = ModelConfig::preset("tiny").unwrap();
    cfg.vocab_size = tok.vocab_size();
    let model = Lm::new(&cfg, &mut InitRng::new(7), &Device::flex());
    common::save_lm(dir, &model, cfg, &tok);
    dir.to_path_buf()
}

const MAX_NEW: usize = 6;

/// Runs `rlhf chat` greedily on `input`; returns (replies, stderr).
fn chat(ckpt: &Path, input: &str) -> (Vec<String>, String) {
    let o = fixtures::run_with_input(
        rlhf()
            .args(["chat", "--ckpt", s(ckpt), "--temperature", "0", "--stats"])
            .args(["--max-new-tokens", &MAX_NEW.to_string(), "--device", "cpu"]),
        input,
    );
    let err = ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    (out.lines().map(str::to_string).collect(), err)
}

/// Greedy replies computed in this process, each turn's prompt the whole history's tokens.
fn replies_with_history(ckpt: &Path, turns: &[&str]) -> Vec<String> {
    let dev = Device::flex();
    let loaded = checkpoint::load_lm(ckpt, &dev).unwrap();
    let model = loaded.model.valid();
    let cfg = SampleConfig {
        temperature: 0.0,
        max_new_tokens: MAX_NEW,
        ..SampleConfig::default()
    };
    let mut history = Vec::new();
    let mut out = Vec::new();
    for t in turns {
        history.extend(loaded.tok.encode(&render_prompt(t)).unwrap());
        let mut rng = Rng::new(0);
        let r = generate(
            &model,
            &[history.clone()],
            &cfg,
            loaded.tok.eot,
            &mut rng,
            true,
            &dev,
        )
        .unwrap()
        .remove(0);
        out.push(loaded.tok.decode(&r).unwrap().trim().to_string());
        history.extend(r);
        history.push(loaded.tok.eot);
    }
    out
}

#[test]
fn the_second_turn_sees_the_first() {
    let d = common::tmp_dir("chat-history");
    let ckpt = checkpoint(&d.join("m"));
    let (replies, err) = chat(&ckpt, "Is the day fine?\nAnd your mother?\n");
    assert_eq!(replies.len(), 2, "{err}");
    let want = replies_with_history(&ckpt, &["Is the day fine?", "And your mother?"]);
    assert_eq!(
        replies, want,
        "chat's replies are not those of the whole history"
    );
    // alone, the second question gets another answer: the history is what changed it
    let (alone, _) = chat(&ckpt, "And your mother?\n");
    assert_ne!(
        alone[0], replies[1],
        "the test cannot tell history from none"
    );
    // turn 2 ran only its own tokens: the previous reply's last token and closing token, and
    // the new question, not the history again
    let stats: Vec<(usize, usize)> = err
        .lines()
        .filter_map(|l| {
            let (_, l) = l.split_once("[turn ")?;
            let (_, rest) = l.split_once(": ")?;
            let mut w = rest.split(' ');
            let fed = w.next()?.parse().ok()?;
            let ctx = w.nth(3)?.parse().ok()?;
            Some((fed, ctx))
        })
        .collect();
    let tok = common::tok();
    let q2 = tok
        .encode(&render_prompt("And your mother?"))
        .unwrap()
        .len();
    assert_eq!(stats.len(), 2, "{err}");
    assert_eq!(stats[0].0, stats[0].1, "turn 1 runs its whole prompt");
    // MAX_NEW sampled tokens, the last not yet fed, then the closing token and the question
    assert_eq!(stats[1], (2 + q2, stats[0].1 + MAX_NEW + 1 + q2), "{err}");
}

#[test]
fn reset_forgets_and_save_writes_messages() {
    let d = common::tmp_dir("chat-reset");
    let ckpt = checkpoint(&d.join("m"));
    let saved = d.join("conversation.jsonl");
    let input = format!(
        "Is the day fine?\n/reset\nAnd your mother?\n/save {}\n/bogus\n",
        s(&saved)
    );
    let (replies, err) = chat(&ckpt, &input);
    let (alone, _) = chat(&ckpt, "And your mother?\n");
    assert_eq!(replies[1], alone[0], "after /reset the history is gone");
    assert!(err.contains("unknown command /bogus"), "{err}");
    let text = std::fs::read_to_string(&saved).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"messages": [
            {"role": "user", "content": "And your mother?"},
            {"role": "assistant", "content": replies[1]},
        ]})
    );
}

#[test]
fn a_long_conversation_drops_its_oldest_turns() {
    let d = common::tmp_dir("chat-long");
    let ckpt = checkpoint(&d.join("m"));
    // tiny's context is 64 tokens: ten turns of a long question outgrow it
    let q = "Pray, what do you think of the weather at Hartfield this week?";
    let saved = d.join("long.jsonl");
    let input = format!("{q}\n").repeat(10) + &format!("/save {}\n", s(&saved));
    let (replies, err) = chat(&ckpt, &input);
    assert_eq!(replies.len(), 10, "{err}");
    // `/save` writes every turn, also those the model no longer sees
    let v: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&saved).unwrap().trim()).unwrap();
    let want: Vec<serde_json::Value> = replies
        .iter()
        .flat_map(|r| {
            [
                serde_json::json!({"role": "user", "content": q}),
                serde_json::json!({"role": "assistant", "content": r}),
            ]
        })
        .collect();
    assert_eq!(v, serde_json::json!({ "messages": want }), "{err}");
    assert!(
        err.contains("outgrew the model's context of 64 tokens"),
        "{err}"
    );
    let turns: Vec<&str> = err
        .lines()
        .filter_map(|l| l.split_once("[turn "))
        .map(|x| x.1)
        .collect();
    assert_eq!(turns.len(), 10, "{err}");
    for l in turns {
        // "N: F tokens run of C in context, ..."
        let ctx: usize = l.split(' ').nth(5).unwrap().parse().unwrap();
        assert!(ctx + MAX_NEW <= 64, "{l}");
    }
}
