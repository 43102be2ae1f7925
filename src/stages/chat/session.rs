//! A conversation with a model that remembers: each turn is appended to the history, and the
//! KV cache is kept from turn to turn, so a turn runs only its new tokens through the model (the
//! user's text and the closing token of the previous reply), not the whole history again.

use crate::data::chat_format;
use crate::data::conversation::{Message, Role};
use crate::data::pairs::fit_prompt;
use crate::data::template::render_prompt;
use crate::data::tokenizer::Tok;
use crate::model::generate::{prompt_room, response_room, sample_rows, Decoder, SampleConfig};
use crate::model::Lm;
use crate::util::rng::Rng;
use anyhow::Result;
use burn::prelude::*;

/// What one turn did.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    /// Tokens run through the model before sampling: the new ones only while the cache holds the
    /// history, the whole (kept) history after a reset of the cache.
    pub fed: usize,
    /// Tokens of history the reply was conditioned on (prompt included).
    pub context: usize,
    /// Tokens sampled (the closing one included).
    pub sampled: usize,
    /// Oldest exchanges (user and assistant turns) dropped to fit the context this turn.
    pub dropped: usize,
    /// Whether the user's turn alone was longer than the room and cut from the left.
    pub cut: bool,
}

pub struct ChatSession<'a> {
    model: &'a Lm,
    tok: &'a Tok,
    cfg: SampleConfig,
    device: Device,
    rng: Rng,
    /// The tokens of each turn the model still sees, in the template: a user turn's rendered
    /// prompt, an assistant turn's sampled tokens and the `<|endoftext|>` that closes it.
    turns: Vec<Vec<u32>>,
    /// Every message since the start or the last reset, those dropped from `turns` to fit the
    /// context included: the user's transcript, which `/save` writes whole.
    transcript: Vec<Message>,
    /// Holds every turn's tokens but the last sampled one; `None` until the first turn or after
    /// turns were dropped.
    dec: Option<Decoder<'a>>,
}

impl<'a> ChatSession<'a> {
    pub fn new(model: &'a Lm, tok: &'a Tok, cfg: SampleConfig, seed: u64, device: &Device) -> Self {
        Self {
            model,
            tok,
            cfg,
            device: device.clone(),
            rng: Rng::new(seed),
            turns: Vec::new(),
            transcript: Vec::new(),
            dec: None,
        }
    }

    /// The conversation so far, every turn since the start or the last reset (also those the
    /// model no longer sees), in the messages format.
    pub fn messages(&self) -> Vec<Message> {
        self.transcript.clone()
    }

    /// Forgets the conversation (the sampling RNG goes on).
    pub fn reset(&mut self) {
        self.turns.clear();
        self.transcript.clear();
        self.dec = None;
    }

    /// The model's answer to `user`, given the conversation so far.
    pub fn say(&mut self, user: &str) -> Result<Reply> {
        let ids = match &self.tok.chat {
            Some(c) => {
                let text = chat_format::user_turn(&c.template, &self.transcript, user)?;
                self.tok.encode(&text)?
            }
            None => self.tok.encode(&render_prompt(user))?,
        };
        self.transcript.push(Message::new(Role::User, user));
        self.turns.push(ids);
        let n_ctx = self.model.n_ctx();
        let max_new = response_room(n_ctx, &self.cfg);
        // what `generate` keeps of a prompt: the rest is the room for the reply
        let room = prompt_room(n_ctx, &self.cfg);
        let mut dropped = 0;
        while self.turns.len() > 1 && self.len() > room {
            self.turns.drain(..2);
            dropped += 1;
            self.dec = None;
        }
        let cut = self.len() > room;
        if cut {
            self.turns[0] = fit_prompt(&self.turns[0], max_new - 1, n_ctx);
            self.dec = None;
        }
        let all: Vec<u32> = self.turns.concat();
        let (mut dec, logits, fed) = match self.dec.take() {
            Some(mut d) => {
                let new = all[d.len()..].to_vec();
                let logits = d.extend(&new)?;
                (d, logits, new.len())
            }
            None => {
                let (d, logits) =
                    Decoder::prefill(self.model, std::slice::from_ref(&all), true, &self.device)?;
                (d, logits, all.len())
            }
        };
        let rngs = std::slice::from_mut(&mut self.rng);
        let out = sample_rows(
            &mut dec,
            logits,
            max_new,
            &self.cfg,
            self.tok.eot,
            (rngs, &[0]),
        )?;
        self.dec = Some(dec);
        let mut ids = out.into_iter().next().unwrap_or_default();
        let text = self.tok.decode(&ids)?.trim().to_string();
        ids.push(self.tok.eot);
        let sampled = ids.len().min(max_new);
        self.transcript
            .push(Message::new(Role::Assistant, text.clone()));
        self.turns.push(ids);
        Ok(Reply {
            text,
            fed,
            context: all.len(),
            sampled,
            dropped,
            cut,
        })
    }

    /// Tokens of the conversation so far.
    fn len(&self) -> usize {
        self.turns.iter().map(Vec::len).sum()
    }
}
