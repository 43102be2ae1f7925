//! Byte-level BPE tokenizer (the `tokenizers` crate): training from a corpus, loading a
//! `tokenizer.json`, and the `<|endoftext|>` special token that separates documents and ends
//! every response.

use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    TokenizerImpl,
};

/// The end-of-text token, as GPT-2 names it.
pub const EOT: &str = "<|endoftext|>";

/// A loaded tokenizer plus the id of `<|endoftext|>`.
#[derive(Clone)]
pub struct Tok {
    pub inner: tokenizers::Tokenizer,
    pub eot: u32,
}

impl Tok {
    /// Loads a `tokenizer.json`; it must contain `<|endoftext|>`.
    pub fn load(path: &Path) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| anyhow!("loading tokenizer {}: {e}", path.display()))?;
        let eot = inner
            .token_to_id(EOT)
            .ok_or_else(|| anyhow!("tokenizer {} has no '{EOT}' token", path.display()))?;
        Ok(Self { inner, eot })
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

    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = crate::util::fs::tmp_path(path);
        self.inner
            .save(&tmp, false)
            .map_err(|e| anyhow!("saving tokenizer {}: {e}", tmp.display()))?;
        crate::util::fs::commit(&tmp, path)
    }
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
        anyhow::bail!("--vocab-size must be at least 258 (256 bytes, <|endoftext|>, one merge), got {vocab_size}");
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
    let names: Vec<String> = files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    tk.train_from_files(&mut trainer, names)
        .map_err(|e| anyhow!("training the tokenizer: {e}"))?;
    let inner = tokenizers::Tokenizer::from(tk);
    let eot = inner
        .token_to_id(EOT)
        .context("trained tokenizer lacks <|endoftext|>")?;
    Ok(Tok { inner, eot })
}
