//! Prompts and demonstrations in a model's own chat template (an imported SmolLM2, Qwen2.5 or
//! Llama 3.2 brings one): the prompt strings every stage passes around — a single user text, or
//! a conversation's history in `template`'s form — become the template's messages, rendered with
//! the generation prompt on; a response is its text followed by the template's end of turn
//! (`Tok::eot`). SFT trains on exactly the assistant turns' tokens of the full rendering and their
//! closing token ([`ChatTemplate::assistant_spans`]).

use super::conversation::Message;
use super::template::EOT_TEXT;
use crate::chat_template::{self as ct, ChatTemplate};
use anyhow::{Context, Result};

/// The messages a prompt string stands for: the turns of a conversation's history (each
/// assistant turn closed by `<|endoftext|>`, each user turn ending in `\nResponse:`), then the
/// last user text; a plain prompt is one user message.
pub fn prompt_messages(prompt: &str) -> Vec<ct::Message> {
    let mut out = Vec::new();
    let turns: Vec<&str> = prompt.split(EOT_TEXT).collect();
    for (i, turn) in turns.iter().enumerate() {
        match turn.split_once("\nResponse:") {
            Some((u, a)) if i + 1 < turns.len() => {
                out.push(ct::Message::user(u.trim()));
                out.push(ct::Message::assistant(a.trim()));
            }
            _ => out.push(ct::Message::user(turn.trim())),
        }
    }
    out
}

/// A conversation's messages for the template.
pub fn template_messages(messages: &[Message]) -> Vec<ct::Message> {
    messages
        .iter()
        .map(|m| ct::Message::new(m.role, m.content.trim()))
        .collect()
}

/// The text a model is conditioned on for `prompt`: its messages rendered, generation prompt on.
pub fn render_prompt(t: &ChatTemplate, prompt: &str) -> Result<String> {
    t.render(&prompt_messages(prompt), true)
        .context("rendering a prompt with the model's chat template")
}

/// The text of a user's next turn as it follows a conversation (`history` ends with the
/// assistant's turn, whose closing token the model has produced): what the rendering of the
/// conversation with the turn and the generation prompt adds after that closing token. The first
/// turn is the whole rendering (the template's system prompt included).
pub fn user_turn(t: &ChatTemplate, history: &[Message], user: &str) -> Result<String> {
    let mut msgs = template_messages(history);
    msgs.push(ct::Message::user(user.trim()));
    let full = t.render(&msgs, true)?;
    if history.is_empty() {
        return Ok(full);
    }
    let past = template_messages(history);
    let prev = t.render(&past, false)?;
    let cut = t.assistant_spans(&past)?.last().map_or(0, |s| s.end);
    anyhow::ensure!(
        full.starts_with(&prev[..cut]),
        "the chat template renders the conversation differently once a turn follows it"
    );
    Ok(full[cut..].to_string())
}

/// A demonstration rendered and tokenized, with which tokens are the assistant's (their text and
/// closing token): the rendering ends at the last assistant turn's closing token.
/// → (token ids, is-target per token)
pub fn demonstration(
    t: &ChatTemplate,
    tok: &tokenizers::Tokenizer,
    messages: &[Message],
) -> Result<(Vec<u32>, Vec<bool>)> {
    let msgs = template_messages(messages);
    let text = t.render(&msgs, false)?;
    let spans = t.assistant_spans(&msgs)?;
    let end = spans.last().map_or(text.len(), |s| s.end);
    let enc = tok
        .encode(&text[..end], false)
        .map_err(|e| anyhow::anyhow!("tokenizing a demonstration: {e}"))?;
    let mask = ct::token_mask(enc.get_offsets(), &spans);
    Ok((enc.get_ids().to_vec(), mask))
}
