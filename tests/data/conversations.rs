//! Conversations in the messages format and HH dialogues: what SFT learns from them (every
//! assistant turn and its closing token, never user or system text), how a conversation prompt
//! is read and tokenized, and the errors for malformed ones.

use crate::common;

use rlhf::data::batching::{sft_batch, tokenize_sft, SftExample};
use rlhf::data::conversation::{Message, Role};
use rlhf::data::formats::{read_prompts, read_sft, SftRecord};
use rlhf::data::rankings::read_rankings;
use rlhf::data::template::{pieces, render_prompt, EOT_TEXT};
use rlhf::data::tokenizer::Tok;
use std::path::PathBuf;

fn write(name: &str, text: &str) -> PathBuf {
    let d = common::tmp_dir(&format!("conv-{name}"));
    let p = d.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn conversation(user_1: &str, user_2: &str) -> SftRecord {
    SftRecord {
        messages: vec![
            Message::new(Role::System, "Answer as Miss Bates would."),
            Message::new(Role::User, user_1),
            Message::new(Role::Assistant, "So very obliging of you!"),
            Message::new(Role::User, user_2),
            Message::new(Role::Assistant, "Oh! my dear sir, how are you?"),
        ],
    }
}

/// (target token, counted) of every position of an example's batch row.
fn targets(tok: &Tok, r: &SftRecord) -> (SftExample, Vec<(i64, bool)>) {
    let (ex, cut) = tokenize_sft(tok, std::slice::from_ref(r), 256).unwrap();
    assert_eq!(cut, 0);
    let e = ex.into_iter().next().unwrap();
    let b = sft_batch(&[&e], tok.eot);
    let t = b.y.iter().zip(&b.w).map(|(&y, &w)| (y, w == 1.0)).collect();
    (e, t)
}

#[test]
fn sft_learns_every_assistant_turn_and_no_user_text() {
    let tok = common::tok();
    let r = conversation("Is the day fine?", "And your mother?");
    let (e, t) = targets(&tok, &r);
    let counted: Vec<u32> = t.iter().filter(|x| x.1).map(|x| x.0 as u32).collect();
    // exactly the two assistant turns, each with its closing token
    let mut want = tok.encode(" So very obliging of you!").unwrap();
    want.push(tok.eot);
    want.extend(tok.encode(" Oh! my dear sir, how are you?").unwrap());
    want.push(tok.eot);
    assert_eq!(counted, want);
    assert_eq!(
        counted.iter().filter(|&&x| x == tok.eot).count(),
        2,
        "both assistant turns' closing tokens are counted"
    );
    // the whole conversation is in the inputs, in the template
    let text = tok.decode(&e.tokens).unwrap();
    assert!(text.starts_with("Answer as Miss Bates would.\nIs the day fine?\nResponse:"));
    assert!(
        text.contains("you!And your mother?\nResponse: Oh!"),
        "{text}"
    );
    // other user text: not one counted target changes
    let (_, t2) = targets(
        &tok,
        &conversation("Shall we walk to Highbury?", "Is it far?"),
    );
    let c2: Vec<u32> = t2.iter().filter(|x| x.1).map(|x| x.0 as u32).collect();
    assert_eq!(counted, c2);
    assert_ne!(t, t2, "the user text did change the sequence");
}

#[test]
fn a_one_turn_conversation_is_the_single_record() {
    let tok = common::tok();
    let p = write(
        "sft.jsonl",
        "{\"prompt\":\"Define: Cat\",\"response\":\"A soft machine.\"}\n\
         {\"messages\":[{\"role\":\"user\",\"content\":\"Define: Cat\"},\
          {\"role\":\"assistant\",\"content\":\"A soft machine.\"}]}\n\
         {\"prompt\":[{\"role\":\"user\",\"content\":\"Define: Cat\"}],\
          \"completion\":[{\"role\":\"assistant\",\"content\":\"A soft machine.\"}]}\n\
         {\"chosen\":\"\\n\\nHuman: Define: Cat\\n\\nAssistant: A soft machine.\",\
          \"rejected\":\"\\n\\nHuman: Define: Cat\\n\\nAssistant: No.\"}\n",
    );
    let r = read_sft(&p).unwrap();
    assert!(r.iter().all(|x| x == &r[0]), "{r:?}");
    let (ex, _) = tokenize_sft(&tok, &r, 64).unwrap();
    // the tokens and targets of the single-turn template, as before conversations existed
    let prompt = tok.encode("Define: Cat\nResponse:").unwrap();
    let mut tokens = prompt.clone();
    tokens.extend(tok.encode(" A soft machine.").unwrap());
    tokens.push(tok.eot);
    assert_eq!(ex[0], SftExample::single(tokens, prompt.len()));
    let p = write(
        "prompts.jsonl",
        "{\"prompt\":\"Define: Cat\"}\n\
         {\"messages\":[{\"role\":\"user\",\"content\":\"Define: Cat\"}]}\n",
    );
    assert_eq!(read_prompts(&p).unwrap(), ["Define: Cat", "Define: Cat"]);
}

/// A conversation prompt read as one string tokenizes exactly as its turns do one by one (as SFT
/// and chat tokenize them), on every conversation of the bundled data.
#[test]
fn conversation_prompts_tokenize_as_their_turns() {
    let tok = common::tok();
    let sft = read_sft(&common::assets().join("sft.jsonl")).unwrap();
    let mut n = 0;
    for r in sft.iter().filter(|r| r.messages.len() > 2) {
        let history = &r.messages[..r.messages.len() - 1];
        let p = rlhf::data::template::prompt_text(history);
        assert!(p.contains(EOT_TEXT));
        let whole = tok.encode(&render_prompt(&p)).unwrap();
        let mut turns = Vec::new();
        for piece in pieces(history) {
            turns.extend(tok.encode(&piece.text).unwrap());
            if piece.assistant {
                turns.push(tok.eot);
            }
        }
        assert_eq!(whole, turns, "{p}");
        n += 1;
    }
    assert!(n >= 100, "only {n} conversations in the bundled SFT data");
    let prompts = read_prompts(&common::assets().join("eval_prompts.jsonl")).unwrap();
    assert!(prompts.iter().filter(|p| p.contains(EOT_TEXT)).count() >= 20);
}

#[test]
fn malformed_conversations_name_file_and_line() {
    let ok = "{\"prompt\":\"a\",\"response\":\"b\"}\n";
    for (bad, want) in [
        (
            "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},\
             {\"role\":\"user\",\"content\":\"b\"}]}",
            "messages[1] is user where assistant was expected",
        ),
        (
            "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},\
             {\"role\":\"assistant\",\"content\":\"  \"}]}",
            "messages[1] (assistant) has empty content",
        ),
        (
            "{\"messages\":[{\"role\":\"narrator\",\"content\":\"a\"}]}",
            "unknown role \"narrator\"",
        ),
        (
            "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
            "must end with an assistant message",
        ),
        (
            "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},\
             {\"role\":\"system\",\"content\":\"b\"}]}",
            "messages[1] is system",
        ),
    ] {
        let p = write("bad.jsonl", &format!("{ok}{bad}\n"));
        let e = format!("{:#}", read_sft(&p).unwrap_err());
        assert!(e.contains("bad.jsonl:2") && e.contains(want), "{e}");
    }
    let p = write(
        "bad_prompts.jsonl",
        "{\"prompt\":\"a\"}\n\
         {\"messages\":[{\"role\":\"user\",\"content\":\"a\"},\
          {\"role\":\"assistant\",\"content\":\"b\"}]}\n",
    );
    let e = format!("{:#}", read_prompts(&p).unwrap_err());
    assert!(
        e.contains("bad_prompts.jsonl:2") && e.contains("must end with a user message"),
        "{e}"
    );
    let p = write(
        "bad_rankings.jsonl",
        "{\"prompt\":[{\"role\":\"assistant\",\"content\":\"a\"}],\
          \"chosen\":\"b\",\"rejected\":\"c\"}\n",
    );
    let e = format!("{:#}", read_rankings(&p, false).unwrap_err());
    assert!(
        e.contains("bad_rankings.jsonl:1") && e.contains("messages[0] is assistant"),
        "{e}"
    );
}

#[test]
fn rankings_may_hold_conversation_prompts() {
    let p = write(
        "rankings.jsonl",
        "{\"prompt\":[{\"role\":\"user\",\"content\":\"hi\"},\
          {\"role\":\"assistant\",\"content\":\"hello\"},\
          {\"role\":\"user\",\"content\":\"joke?\"}],\
          \"chosen\":[{\"role\":\"assistant\",\"content\":\"A fine one.\"}],\
          \"rejected\":[{\"role\":\"assistant\",\"content\":\"No.\"}]}\n\
         {\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},\
          {\"role\":\"assistant\",\"content\":\"hello\"},\
          {\"role\":\"user\",\"content\":\"joke?\"}],\
          \"responses\":[\"A fine one.\",\"No.\"]}\n\
         {\"chosen\":\
          \"\\n\\nHuman: hi\\n\\nAssistant: hello\\n\\nHuman: joke?\\n\\nAssistant: A fine one.\",\
          \"rejected\":\
          \"\\n\\nHuman: hi\\n\\nAssistant: hello\\n\\nHuman: joke?\\n\\nAssistant: No.\"}\n",
    );
    let (r, _) = read_rankings(&p, false).unwrap();
    let prompt = "hi\nResponse: hello<|endoftext|>joke?";
    for x in &r {
        assert_eq!(x.prompt, prompt);
        assert_eq!(
            x.responses.iter().map(|s| s.trim()).collect::<Vec<_>>(),
            ["A fine one.", "No."]
        );
    }
}
