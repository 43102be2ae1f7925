//! Byte-level BPE tokenizer (the `tokenizers` crate): training from a corpus, loading a
//! `tokenizer.json`, building OpenAI's GPT-2 tokenizer from `vocab.json` + `merges.txt` (bundled
//! in `assets/gpt2/`), and the `<|endoftext|>` special token that separates documents and ends
//! every response.

use super::{chat_format, template};
use crate::chat_template::{ChatTemplate, SpecialTokens};
use anyhow::{anyhow, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, Vocab, BPE};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    TokenizerImpl,
};

/// The end-of-text token, as GPT-2 names it.
pub const EOT: &str = "<|endoftext|>";

/// OpenAI's GPT-2 vocabulary (`encoder.json`, 50,257 tokens) and merges (`vocab.bpe`), bundled so
/// `--tokenizer gpt2` works from anywhere (provenance in `assets/README.md`).
const GPT2_VOCAB: &str = include_str!("../../assets/gpt2/vocab.json");
const GPT2_MERGES: &str = include_str!("../../assets/gpt2/merges.txt");

/// A loaded tokenizer, the id of the token that ends a response, and the model's chat template
/// when it came with one (prompts are then rendered with it, not with `template`'s).
#[derive(Clone)]
pub struct Tok {
    pub inner: tokenizers::Tokenizer,
    pub eot: u32,
    pub chat: Option<Chat>,
}

/// A chat template with its source (saved beside the tokenizer as [`CHAT_TEMPLATE`]).
#[derive(Clone)]
pub struct Chat {
    pub source: String,
    pub template: Arc<ChatTemplate>,
}

/// The file beside `tokenizer.json` that holds a model's chat template (Jinja, as
/// `tokenizer_config.json`'s `chat_template` or a GGUF's `tokenizer.chat_template`).
pub const CHAT_TEMPLATE: &str = "chat_template.jinja";

/// The tokens that end a response, in order of preference: a chat model's end of turn (ChatML's
/// `<|im_end|>` in SmolLM2 and Qwen2, Llama 3's `<|eot_id|>`) before the end of text, so a model
/// that was taught to close its turns is trained and sampled to close them the same way.
pub const RESPONSE_ENDS: [&str; 4] = ["<|im_end|>", "<|eot_id|>", EOT, "<|end_of_text|>"];

impl Tok {
    /// Loads a `tokenizer.json`; it must hold one of [`RESPONSE_ENDS`]. A [`CHAT_TEMPLATE`] file
    /// beside it is the model's chat template.
    pub fn load(path: &Path) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| anyhow!("loading tokenizer {}: {e}", path.display()))?;
        let tok =
            Self::from_tokenizer(inner).with_context(|| format!("tokenizer {}", path.display()))?;
        let template = path.with_file_name(CHAT_TEMPLATE);
        if !template.is_file() {
            return Ok(tok);
        }
        let source = std::fs::read_to_string(&template)
            .with_context(|| format!("reading {}", template.display()))?;
        tok.with_chat_template(&source)
            .with_context(|| format!("{}", template.display()))
    }

    /// The same tokenizer with `source` as its chat template; the template's `eos_token` is the
    /// response end, its `bos_token` Llama 3's `<|begin_of_text|>` where the vocabulary has it.
    pub fn with_chat_template(mut self, source: &str) -> Result<Self> {
        let name = |id: u32| self.inner.id_to_token(id);
        let special = SpecialTokens {
            bos: ["<|begin_of_text|>", "<s>"]
                .iter()
                .find(|t| self.inner.token_to_id(t).is_some())
                .map(|t| t.to_string()),
            eos: name(self.eot),
        };
        let template = ChatTemplate::new(source, special)?;
        self.chat = Some(Chat {
            source: source.to_string(),
            template: Arc::new(template),
        });
        Ok(self)
    }

    /// The tokens a model is conditioned on for `prompt` (a prompt string as the data files
    /// give it): the chat template's rendering when there is one, else `template`'s.
    pub fn prompt_ids(&self, prompt: &str) -> Result<Vec<u32>> {
        match &self.chat {
            Some(c) => self.encode(&chat_format::render_prompt(&c.template, prompt)?),
            None => self.encode(&template::render_prompt(prompt)),
        }
    }

    /// The tokens of a response as they follow its prompt's, without the closing [`Tok::eot`].
    pub fn response_ids(&self, response: &str) -> Result<Vec<u32>> {
        match &self.chat {
            Some(_) => self.encode(response.trim()),
            None => self.encode(&template::render_response(response)),
        }
    }

    /// Wraps a tokenizer; its response end is the first of [`RESPONSE_ENDS`] it holds.
    pub fn from_tokenizer(inner: tokenizers::Tokenizer) -> Result<Self> {
        let eot = RESPONSE_ENDS
            .iter()
            .find_map(|t| inner.token_to_id(t))
            .ok_or_else(|| {
                anyhow!(
                    "no token to end a response: expected one of {}",
                    RESPONSE_ENDS.join(", ")
                )
            })?;
        Ok(Self {
            inner,
            eot,
            chat: None,
        })
    }

    /// OpenAI's GPT-2 tokenizer (50,257 tokens, `<|endoftext|>` = 50256), from the bundled
    /// `assets/gpt2/` files. Token for token the same as tiktoken's `r50k_base`.
    pub fn gpt2() -> Result<Self> {
        from_vocab_merges(GPT2_VOCAB, GPT2_MERGES).context("building the bundled GPT-2 tokenizer")
    }

    /// A GPT-2-style tokenizer from Hugging Face's `vocab.json` + `merges.txt` files.
    pub fn from_vocab_merges_files(vocab: &Path, merges: &Path) -> Result<Self> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
        };
        from_vocab_merges(&read(vocab)?, &read(merges)?)
            .with_context(|| format!("building a tokenizer from {}", vocab.display()))
    }

    /// `gpt2` for the bundled GPT-2 tokenizer, otherwise a path to a `tokenizer.json` (any path
    /// the system allows, UTF-8 or not).
    pub fn open(spec: impl AsRef<Path>) -> Result<Self> {
        let p = spec.as_ref();
        if p == Path::new("gpt2") && !p.exists() {
            return Self::gpt2();
        }
        Self::load(p)
    }

    /// Whether `other` is the same tokenizer: the same serialized form (vocabulary, merges,
    /// special tokens, pre-tokenizer and decoder), so the two map every text to the same ids.
    /// Two tokenizers of one size trained on other text differ here.
    pub fn same_as(&self, other: &Tok) -> Result<bool> {
        let json = |t: &Tok| {
            t.inner
                .to_string(false)
                .map_err(|e| anyhow!("serializing a tokenizer: {e}"))
        };
        Ok(json(self)? == json(other)?)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of `text` (no special tokens added; `<|endoftext|>` written in the text is kept
    /// as the special token).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| anyhow!("tokenizing: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens dropped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| anyhow!("decoding: {e}"))
    }

    /// Writes `tokenizer.json` to `path` and the chat template, when there is one, beside it.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = crate::util::fs::tmp_path(path);
        self.inner
            .save(&tmp, false)
            .map_err(|e| anyhow!("saving tokenizer {}: {e}", tmp.display()))?;
        crate::util::fs::commit(&tmp, path)?;
        if let Some(c) = &self.chat {
            let t = path.with_file_name(CHAT_TEMPLATE);
            crate::util::fs::write_atomic(&t, c.source.as_bytes())?;
        }
        Ok(())
    }
}

/// A byte-level BPE as GPT-2's: no prefix space, GPT-2's pre-tokenizing regex, `<|endoftext|>`
/// (which must be in the vocabulary) as a special token. `merges` is `merges.txt`: an optional
/// `#version` line, then one merge `a b` a line.
fn from_vocab_merges(vocab_json: &str, merges: &str) -> Result<Tok> {
    let vocab: HashMap<String, u32> =
        serde_json::from_str(vocab_json).context("parsing vocab.json")?;
    let eot = *vocab
        .get(EOT)
        .ok_or_else(|| anyhow!("vocab.json has no '{EOT}' token"))?;
    let mut pairs = Vec::new();
    for (i, line) in merges.lines().enumerate() {
        if line.is_empty() || (i == 0 && line.starts_with("#version")) {
            continue;
        }
        let (a, b) = line
            .split_once(' ')
            .ok_or_else(|| anyhow!("merges.txt line {}: expected 'a b', got {line:?}", i + 1))?;
        pairs.push((a.to_string(), b.to_string()));
    }
    let bpe = BPE::builder()
        .vocab_and_merges(vocab.into_iter().collect::<Vocab>(), pairs)
        .build()
        .map_err(|e| anyhow!("building the BPE model: {e}"))?;
    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    inner.with_decoder(Some(ByteLevelDecoder::new(false, true, true)));
    inner.with_post_processor(Some(ByteLevel::new(true, false, true)));
    inner.add_special_tokens(&[AddedToken::from(EOT, true)]);
    Ok(Tok {
        inner,
        eot,
        chat: None,
    })
}

/// Trains a byte-level BPE with `vocab_size` tokens (including the 256 byte tokens and
/// `<|endoftext|>`) on the given text files. No prefix space is added, as in GPT-2.
pub fn train(files: &[PathBuf], vocab_size: usize) -> Result<Tok> {
    for f in files {
        if !f.is_file() {
            anyhow::bail!("corpus file {} does not exist", f.display());
        }
    }
    if vocab_size < 258 {
        anyhow::bail!(
            "--vocab-size must be at least 258 (256 bytes, <|endoftext|>, one merge), \
             got {vocab_size}"
        );
    }
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(vocab_size)
        .min_frequency(2)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .special_tokens(vec![AddedToken::from(EOT, true)])
        .build()
        .into();
    let mut tk: TokenizerImpl<
        ModelWrapper,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    > = TokenizerImpl::new(BPE::default().into());
    tk.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tk.with_decoder(Some(ByteLevelDecoder::new(false, true, true)));
    // read as every other corpus reader does (`read_text`: UTF-8 checked, `\r\n` read as `\n`)
    // rather than `train_from_files`, which keeps a Windows file's `\r`s and needs each path as
    // a UTF-8 string; the lines with their endings are what `train_from_files` feeds, so an
    // `\n` corpus trains the same tokenizer
    let texts = files
        .iter()
        .map(|f| super::formats::read_text(f).context("reading the tokenizer's corpus"))
        .collect::<Result<Vec<_>>>()?;
    let lines = texts.iter().flat_map(|t| t.split_inclusive('\n'));
    tk.train(&mut trainer, lines)
        .map_err(|e| anyhow!("training the tokenizer: {e}"))?;
    let inner = tokenizers::Tokenizer::from(tk);
    let eot = inner
        .token_to_id(EOT)
        .context("trained tokenizer lacks <|endoftext|>")?;
    Ok(Tok {
        inner,
        eot,
        chat: None,
    })
}
