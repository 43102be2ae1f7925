//! Assistant spans: for each model's template, the spans' text is each assistant message's
//! content and its end-of-turn token; templates that are not prefix-stable fail naming the
//! turn; token masks from a real tokenizer's offsets select exactly the spans' tokens.

use crate::{model_template, reference};
use rlhf::chat_template::{token_mask, ChatTemplate, Message, Role, SpecialTokens};
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

/// Python's `str.strip()`, which Llama 3.2's template applies to content.
fn python_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Fails when a span starts inside the prompt (the generation prompt's header in it), ends
/// before the end-of-turn token or after it (ChatML's `"\n"` in it), or misses a turn.
#[test]
fn spans_are_contents_and_end_token() {
    let r = reference();
    for (name, t) in &r.templates {
        let template = model_template(&r, name);
        let eos = t.eos.as_deref().unwrap();
        let mut n_spans = 0;
        for (conversation, messages) in &r.conversations {
            let text = template.render(messages, false).unwrap();
            let spans = template.assistant_spans(messages).unwrap();
            let want: Vec<String> = messages
                .iter()
                .filter(|m| m.role == Role::Assistant)
                .map(|m| match name.as_str() {
                    "llama3.2" => format!("{}{eos}", python_strip(&m.content)),
                    _ => format!("{}{eos}", m.content),
                })
                .collect();
            let got: Vec<&str> = spans.iter().map(|s| &text[s.clone()]).collect();
            assert_eq!(got, want, "{name} {conversation}");
            for span in &spans {
                // ChatML's newline after <|im_end|> is the template's, not the model's
                let after = if name == "llama3.2" {
                    "<|start_header_id|>"
                } else {
                    "\n"
                };
                let rest = &text[span.end..];
                assert!(
                    rest.is_empty() || rest.starts_with(after),
                    "{name}: {rest:?}"
                );
            }
            n_spans += spans.len();
        }
        assert_eq!(
            n_spans, 6,
            "{name}: the reference conversations hold 6 assistant turns"
        );
    }
}

/// Two user/assistant exchanges.
fn two_exchanges() -> Vec<Message> {
    vec![
        Message::user("q1"),
        Message::assistant("a1"),
        Message::user("q2"),
        Message::assistant("a2"),
    ]
}

fn tiny(source: &str) -> ChatTemplate {
    let special = SpecialTokens {
        bos: None,
        eos: Some("<end>".into()),
    };
    ChatTemplate::new(source, special).unwrap()
}

/// A template that rewrites past assistant turns (as reasoning templates strip the thinking of
/// all but the last): turn 1 renders differently once turn 3 follows. Fails if the check is
/// gone (the span would then be measured in a text the model never wrote) or names no turn.
#[test]
fn a_template_that_rewrites_history_names_the_turn() {
    let template = tiny(
        "{% for m in messages %}{{ m.role }}: \
         {% if m.role == 'assistant' and not loop.last %}[earlier answer]\
         {% else %}{{ m.content }}{% endif %}<end>\n{% endfor %}\
         {% if add_generation_prompt %}assistant: {% endif %}",
    );
    let err = format!(
        "{:#}",
        template.assistant_spans(&two_exchanges()).unwrap_err()
    );
    assert!(
        err.contains("turn 1 (assistant)") && err.contains("not prefix-stable"),
        "{err}"
    );
    // the last turn alone is fine: nothing after it rewrites it
    let one = &two_exchanges()[..2];
    let spans = template.assistant_spans(one).unwrap();
    assert_eq!(
        &template.render(one, false).unwrap()[spans[0].clone()],
        "a1<end>"
    );
}

/// A generation prompt that is not how the template starts an assistant turn.
#[test]
fn a_generation_prompt_unlike_the_turn_names_the_turn() {
    let template = tiny(
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}<end>{% endfor %}\
         {% if add_generation_prompt %}<bot>{% endif %}",
    );
    let err = format!(
        "{:#}",
        template.assistant_spans(&two_exchanges()).unwrap_err()
    );
    assert!(
        err.contains("turn 1 (assistant)") && err.contains("generation prompt"),
        "{err}"
    );
}

/// Spans need an end-of-turn token to end at, and an assistant turn a prompt before it.
#[test]
fn spans_need_an_end_token_and_a_prompt() {
    let source = "{% for m in messages %}{{ m.content }}<end>{% endfor %}";
    let no_eos = ChatTemplate::new(source, SpecialTokens::default()).unwrap();
    let err = format!(
        "{:#}",
        no_eos.assistant_spans(&two_exchanges()).unwrap_err()
    );
    assert!(err.contains("SpecialTokens::eos is not set"), "{err}");
    let first = [Message::assistant("hi"), Message::user("q")];
    let err = format!("{:#}", tiny(source).assistant_spans(&first).unwrap_err());
    assert!(err.contains("turn 0 is an assistant message"), "{err}");
    let other_eos = SpecialTokens {
        bos: None,
        eos: Some("<|im_end|>".into()),
    };
    let err = ChatTemplate::new(source, other_eos)
        .unwrap()
        .assistant_spans(&two_exchanges());
    let err = format!("{:#}", err.unwrap_err());
    assert!(
        err.contains("turn 1 (assistant)") && err.contains("no end-of-turn"),
        "{err}"
    );
}

/// A byte-level tokenizer with no merges (every byte a token) and ChatML's two special tokens:
/// multi-byte characters span several tokens, special tokens are one.
fn byte_tokenizer() -> Tokenizer {
    let vocab: Vocab = ByteLevel::alphabet()
        .into_iter()
        .enumerate()
        .map(|(id, c)| (c.to_string(), id as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, vec![])
        .build()
        .unwrap();
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevel::new(false, true, true)));
    let special = ["<|im_start|>", "<|im_end|>"].map(|t| AddedToken::from(t, true));
    tok.add_special_tokens(&special);
    tok
}

/// The mask from the encoding's offsets selects the tokens that decode to the spans' text, with
/// unicode content whose characters are several byte tokens. Fails if the offsets were read as
/// characters instead of bytes, or the mask dropped a span's edge tokens.
#[test]
fn token_mask_selects_the_span_tokens() {
    let r = reference();
    let template = model_template(&r, "smollm2");
    let messages = &r.conversations["tricky_content"];
    let text = template.render(messages, false).unwrap();
    let spans = template.assistant_spans(messages).unwrap();
    let tok = byte_tokenizer();
    let enc = tok.encode(text.as_str(), false).unwrap();
    let mask = token_mask(enc.get_offsets(), &spans);
    let ids: Vec<u32> = enc
        .get_ids()
        .iter()
        .zip(&mask)
        .filter(|p| *p.1)
        .map(|p| *p.0)
        .collect();
    let got = tok.decode(&ids, false).unwrap();
    let want: String = spans.iter().map(|s| &text[s.clone()]).collect();
    assert_eq!(got, want);
    assert!(want.contains("🦀") && want.ends_with("<|im_end|>"));
    // of the six <|im_end|>: the two closing assistant turns and the one written in the last
    // assistant's content are in; the three closing the system and user turns are not
    let im_end = tok.token_to_id("<|im_end|>").unwrap();
    let all: Vec<bool> = enc
        .get_ids()
        .iter()
        .zip(&mask)
        .filter(|p| *p.0 == im_end)
        .map(|p| *p.1)
        .collect();
    assert_eq!(all, [false, false, true, false, true, true]);
}
