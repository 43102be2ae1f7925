//! The one prompt template used by SFT, sampling, the reward model, PPO and chat.
//!
//! ```text
//! {prompt}\nResponse: {response}<|endoftext|>
//! ```
//! The prompt part is everything up to and including `"Response:"`; the response starts with a
//! space and ends with `<|endoftext|>`, which teaches the model to stop.
//!
//! A conversation is its turns in this template, one after another; a system message is the
//! first line of the first user turn (one string, shown here a turn a line):
//! ```text
//! {system}\n{user 1}\nResponse: {assistant 1}<|endoftext|>
//! {user 2}\nResponse: {assistant 2}<|endoftext|>
//! …
//! ```
//! so a one-turn conversation is exactly a single prompt and its response, and a model stops after
//! its turn as it does after a single response. As a prompt (history through the last user turn)
//! a conversation is one string, [`prompt_text`], that [`render_prompt`] completes like any other.

use super::conversation::{Message, Role};

/// The special token's text: the tokenizer reads it as the one `<|endoftext|>` token.
pub const EOT_TEXT: &str = "<|endoftext|>";

/// The text a model is conditioned on for `prompt`.
pub fn render_prompt(prompt: &str) -> String {
    format!("{}\nResponse:", prompt.trim_end())
}

/// The text of a response as it follows the rendered prompt (leading space added).
pub fn render_response(response: &str) -> String {
    format!(" {}", response.trim())
}

/// One piece of a rendered conversation: a user turn (rendered prompt, system line included) or
/// an assistant turn (rendered response, its closing `<|endoftext|>` not included).
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub text: String,
    pub assistant: bool,
}

/// A validated conversation's pieces in order (see the module docs).
pub fn pieces(messages: &[Message]) -> Vec<Piece> {
    let mut system = String::new();
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        match m.role {
            Role::System => system = system_line(&m.content),
            Role::User => out.push(Piece {
                text: render_prompt(&format!("{}{}", std::mem::take(&mut system), m.content)),
                assistant: false,
            }),
            Role::Assistant => out.push(Piece {
                text: render_response(&m.content),
                assistant: true,
            }),
        }
    }
    out
}

/// A conversation that ends with a user turn as one prompt string: `render_prompt` of it is the
/// whole history in the template, each earlier assistant turn closed by `<|endoftext|>`. A
/// one-message conversation is its user text unchanged.
pub fn prompt_text(messages: &[Message]) -> String {
    let Some((last, history)) = messages.split_last() else {
        return String::new();
    };
    let mut s = String::new();
    for p in pieces(history) {
        s += &p.text;
        if p.assistant {
            s += EOT_TEXT;
        }
    }
    // a system message right before the last turn has no piece yet: it is that turn's first line
    if let Some(m) = history.last().filter(|m| m.role == Role::System) {
        s += &system_line(&m.content);
    }
    s + &last.content
}

/// Whether a prompt string holds a conversation's history (an earlier turn before the user's).
pub fn is_conversation(prompt: &str) -> bool {
    prompt.contains(EOT_TEXT)
}

fn system_line(content: &str) -> String {
    format!("{}\n", content.trim())
}

/// A prompt string for people to read: a conversation's turns as `User:` / `Assistant:` lines; a
/// single-turn prompt unchanged.
pub fn display_prompt(prompt: &str) -> String {
    if !is_conversation(prompt) {
        return prompt.to_string();
    }
    let mut lines = Vec::new();
    let turns: Vec<&str> = prompt.split(EOT_TEXT).collect();
    for (i, turn) in turns.iter().enumerate() {
        match turn.split_once("\nResponse:") {
            Some((u, a)) if i + 1 < turns.len() => {
                lines.push(format!("User: {}", u.trim()));
                lines.push(format!("Assistant: {}", a.trim()));
            }
            _ => lines.push(format!("User: {}", turn.trim())),
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::conversation::{Message, Role};

    #[test]
    fn template_shape() {
        assert_eq!(render_prompt("Define: Cat "), "Define: Cat\nResponse:");
        assert_eq!(render_response(" A cat."), " A cat.");
    }

    #[test]
    fn conversations_render_turn_after_turn() {
        let m = [
            Message::new(Role::System, "Be kind."),
            Message::new(Role::User, "Who is he?"),
            Message::new(Role::Assistant, " Mr. Darcy. "),
            Message::new(Role::User, "Is he rich?"),
        ];
        let p = prompt_text(&m);
        assert_eq!(
            render_prompt(&p),
            "Be kind.\nWho is he?\nResponse: Mr. Darcy.<|endoftext|>Is he rich?\nResponse:"
        );
        let texts: Vec<String> = pieces(&m).into_iter().map(|p| p.text).collect();
        assert_eq!(
            texts,
            [
                "Be kind.\nWho is he?\nResponse:",
                " Mr. Darcy.",
                "Is he rich?\nResponse:"
            ]
        );
        // a one-turn conversation is the single prompt itself
        assert_eq!(prompt_text(&m[1..2]), "Who is he?");
        assert_eq!(
            display_prompt(&p),
            "User: Be kind.\nWho is he?\nAssistant: Mr. Darcy.\nUser: Is he rich?"
        );
        assert_eq!(display_prompt("Define: Cat"), "Define: Cat");
    }
}
