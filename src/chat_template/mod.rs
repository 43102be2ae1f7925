//! Chat templates: a conversation rendered with a model's own Jinja chat template, byte for
//! byte as `transformers`' `tokenizer.apply_chat_template(messages, tokenize=False,
//! add_generation_prompt=...)` renders it, and the parts of that rendering a model learns to
//! write (the assistant turns), for masking the loss of supervised fine-tuning.
//!
//! The template is the model's (`tokenizer.chat_template` in a GGUF's metadata or in
//! `tokenizer_config.json`); the environment it runs in is `transformers`' (see `env`). The
//! tests compare renderings of SmolLM2's, Qwen2.5's and Llama 3.2's templates with
//! `transformers`' own (`tests/chat_template_reference/`).
//!
//! # Assistant spans
//! Templates carry no markers saying which text is the assistant's, so
//! [`ChatTemplate::assistant_spans`] finds it by rendering prefixes of the conversation: for an
//! assistant message `i`, `render(messages[..i], true)` is the prompt the model sees at
//! inference, and what `render(messages[..=i], false)` adds after it is the assistant's turn.
//! The span is that turn's text up to and including the last end-of-turn token in it
//! ([`SpecialTokens::eos`]: `<|im_end|>` in ChatML, `<|eot_id|>` in Llama 3): exactly what the
//! model writes before it stops. Whatever the template puts after the end-of-turn token
//! (ChatML's `"\n"`) is not in the span: generation stops at the end-of-turn token, so the model
//! never writes it (SmolLM2-135M-Instruct, asked a question greedily, ends `... Paris.`
//! `<|im_end|>` and stops, without the `"\n"` token 198); it is input to the next turn's
//! prediction, like the next `<|im_start|>`.

mod env;
mod json;

pub use env::{strftime, Clock};
use minijinja::value::Serde;
use minijinja::{Environment, Value};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;
use time::PrimitiveDateTime;

/// The name the template is stored under in its environment (and errors name it by).
const NAME: &str = "chat_template";

/// Who speaks a message; the template sees `message.role` as the lowercase string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The string templates compare `message.role` with.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message of a conversation, as templates see it: `{"role": ..., "content": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// The tokenizer's special tokens a template may read, as `transformers` passes them (its
/// `special_tokens_map`): `bos_token` and `eos_token`, undefined in the template when `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// `bos_token`: e.g. `<|begin_of_text|>` (Llama 3), `<|im_start|>` (SmolLM2), none (Qwen2.5).
    pub bos: Option<String>,
    /// `eos_token`, the token an assistant turn ends with: `<|im_end|>` (ChatML), `<|eot_id|>`
    /// (Llama 3 Instruct). [`ChatTemplate::assistant_spans`] needs it.
    pub eos: Option<String>,
}

/// A compiled chat template and the special tokens it is rendered with.
pub struct ChatTemplate {
    env: Environment<'static>,
    special: SpecialTokens,
}

impl ChatTemplate {
    /// Compiles `source`, a Jinja chat template; a syntax error names its line.
    pub fn new(source: &str, special: SpecialTokens) -> Result<Self> {
        let mut env = env::environment(Clock::Now).map_err(|e| anyhow!(describe(&e)))?;
        env.add_template_owned(NAME, source.to_owned())
            .map_err(|e| anyhow!("compiling the chat template: {}", describe(&e)))?;
        Ok(Self { env, special })
    }

    /// The same template with `strftime_now` reading `now` instead of the clock (Llama 3.x
    /// writes today's date into its system turn): renderings that do not change from day to day.
    pub fn with_now(mut self, now: PrimitiveDateTime) -> Self {
        env::set_clock(&mut self.env, Clock::Fixed(now));
        self
    }

    /// The conversation rendered as `apply_chat_template(messages, tokenize=False,
    /// add_generation_prompt=add_generation_prompt)` renders it: the template sees `messages`,
    /// `add_generation_prompt`, `tools` and `documents` (both `None`), and `bos_token` and
    /// `eos_token` where set.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        ensure!(
            !messages.is_empty(),
            "cannot apply a chat template to an empty conversation"
        );
        let mut ctx = vec![
            ("messages", Value::from(Serde(messages))),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
            ("tools", Value::from(())),
            ("documents", Value::from(())),
        ];
        let tokens = [
            ("bos_token", &self.special.bos),
            ("eos_token", &self.special.eos),
        ];
        for (name, token) in tokens {
            if let Some(token) = token {
                ctx.push((name, Value::from(token.as_str())));
            }
        }
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| anyhow!(describe(&e)))?;
        template
            .render(Value::from_pairs(ctx))
            .map_err(|e| anyhow!("rendering the chat template: {}", describe(&e)))
    }

    /// The byte ranges of `render(messages, false)` that the model writes: each assistant
    /// message's content and its end-of-turn token (see the module's "Assistant spans"), in
    /// order. Fails, naming the turn (its index in `messages`), when an assistant message comes
    /// first, when its turn has no end-of-turn token, or when the template is not prefix-stable
    /// there: when the prompt with the generation prompt is not how the turn's rendering
    /// starts, or when later turns change how it or an earlier turn renders (templates that
    /// strip the reasoning of past turns do), since the model would then learn from text that
    /// is not what it sees at inference.
    pub fn assistant_spans(&self, messages: &[Message]) -> Result<Vec<Range<usize>>> {
        let eos = self.special.eos.as_deref().context(
            "assistant spans end at the end-of-turn token, and SpecialTokens::eos is not set",
        )?;
        let full = self.render(messages, false)?;
        let mut spans = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            if message.role != Role::Assistant {
                continue;
            }
            if i == 0 {
                bail!("turn 0 is an assistant message: an assistant turn needs a prompt before it");
            }
            let prompt = self
                .render(&messages[..i], true)
                .with_context(|| format!("rendering the prompt of turn {i} (assistant)"))?;
            let with_turn = self
                .render(&messages[..=i], false)
                .with_context(|| format!("rendering the conversation up to turn {i}"))?;
            ensure!(
                with_turn.starts_with(&prompt),
                "turn {i} (assistant): the template is not prefix-stable: the conversation before \
                 it, rendered with the generation prompt, is not how the conversation up to it \
                 starts, so the model would learn a turn after a prompt it never sees"
            );
            ensure!(
                full.starts_with(&with_turn),
                "turn {i} (assistant): the template is not prefix-stable: the turns after it \
                 change how it or a turn before it renders (does the template rewrite past \
                 turns?), so its span in the whole conversation is not the text the model writes"
            );
            let turn = &with_turn[prompt.len()..];
            let end = turn.rfind(eos).with_context(|| {
                format!("turn {i} (assistant): its rendering {turn:?} has no end-of-turn {eos:?}")
            })?;
            spans.push(prompt.len()..prompt.len() + end + eos.len());
        }
        Ok(spans)
    }
}

/// Which tokens the loss learns, given each token's byte range in the rendered text
/// (`tokenizers::Encoding::get_offsets`) and the byte spans to learn
/// ([`ChatTemplate::assistant_spans`]): a token is in when its range overlaps a span, as
/// `transformers`' `return_assistant_tokens_mask` marks every token from the one holding a
/// span's first byte to the one holding its last. A token with an empty range (a special token
/// the post-processor added, `(0, 0)`) is never in.
pub fn token_mask(offsets: &[(usize, usize)], spans: &[Range<usize>]) -> Vec<bool> {
    offsets
        .iter()
        .map(|&(start, end)| {
            start < end
                && spans
                    .iter()
                    .any(|span| start < span.end && span.start < end)
        })
        .collect()
}

/// A minijinja error as one line: where it is (the template's line) and what it says, with the
/// errors that caused it.
fn describe(e: &minijinja::Error) -> String {
    let what = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    let mut out = match e.line() {
        Some(line) => format!("line {line}: {what}"),
        None => what,
    };
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        out.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_mask_takes_overlapping_tokens() {
        // seven tokens' byte ranges around a span 2..9
        let offsets = [(0, 0), (0, 1), (1, 3), (3, 9), (5, 5), (9, 10), (10, 10)];
        // (0,0) added bos: never; (0,1) before: out; (1,3) straddles the start: in; (3,9)
        // inside: in; (5,5) empty, even inside: out; (9,10) starts at the span's end: out
        let mask = token_mask(&offsets, std::slice::from_ref(&(2..9)));
        assert_eq!(mask, [false, false, true, true, false, false, false]);
        assert_eq!(token_mask(&offsets, &[]), [false; 7]);
        let two = token_mask(&offsets, &[0..1, 9..10]);
        assert_eq!(two, [false, true, false, false, false, true, false]);
    }
}
