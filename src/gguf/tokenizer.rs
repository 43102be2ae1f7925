//! The tokenizer a GGUF file describes, built as a `tokenizers::Tokenizer`: for
//! `tokenizer.ggml.model = gpt2` (byte-level BPE, the Llama-3, Qwen2, SmolLM and GPT-2 families)
//! from the vocabulary (`tokenizer.ggml.tokens`), the merges (`tokenizer.ggml.merges`), the token
//! types (control and user-defined tokens are matched whole in the text) and the pre-tokenizer
//! that `tokenizer.ggml.pre` names; plus the special token ids and the chat template.
//!
//! The pre-tokenizers split the text as llama.cpp does (`llm_tokenizer_bpe` in
//! `src/llama-vocab.cpp`): each regex of the family's list in turn cuts every piece into its
//! matches and the text between them (a `Split` with `Isolated` behaviour), then each piece is
//! mapped to GPT-2's byte alphabet and merged by rank. The regexes are the ones in the families'
//! own `tokenizer.json`s (llama.cpp rewrites some to avoid `(?i:...)`; `fancy-regex` has it).

use super::read::GgufFile;
use anyhow::{anyhow, bail, ensure, Context, Result};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior};

/// GPT-2's pre-tokenizing regex, as `tokenizers`' `ByteLevel` has it.
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Llama 3's (`tokenizer.json` of meta-llama/Meta-Llama-3-8B): numbers in runs of up to three.
const LLAMA3: &str = concat!(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
);
/// Qwen2's (`PRETOKENIZE_REGEX` of transformers' Qwen2 tokenizer): single digits.
const QWEN2: &str = concat!(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
);

/// How one `tokenizer.ggml.pre` family tokenizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreTokenizerSpec {
    /// The regexes applied in turn (llama.cpp's `regex_exprs`).
    pub regexes: &'static [&'static str],
    /// A piece that is a whole token is taken as it is, without merging (Llama 3's
    /// `ignore_merges`).
    pub ignore_merges: bool,
    /// Whether llama.cpp adds BOS when `tokenizer.ggml.add_bos_token` is absent.
    pub add_bos: bool,
}

const fn spec(regexes: &'static [&'static str]) -> PreTokenizerSpec {
    PreTokenizerSpec {
        regexes,
        ignore_merges: false,
        add_bos: false,
    }
}

/// The `tokenizer.ggml.pre` values understood, and their pre-tokenizers (llama.cpp's
/// `llama_vocab::impl::load` maps the names, `llm_tokenizer_bpe` the regexes).
pub fn pre_tokenizer(pre: &str) -> Result<PreTokenizerSpec> {
    Ok(match pre {
        // StarCoder's tokenizer and its descendants: every digit alone, then GPT-2's regex
        // (SmolLM2's tokenizer.json: Digits(individual_digits) then ByteLevel)
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" => spec(&[r"\p{N}", GPT2]),
        "gpt-2" | "phi-2" | "mpt" | "olmo" => spec(&[GPT2]),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" => PreTokenizerSpec {
            regexes: &[LLAMA3],
            ignore_merges: true,
            add_bos: true,
        },
        "dbrx" | "smaug-bpe" => spec(&[LLAMA3]),
        "qwen2" | "deepseek-r1-qwen" | "megrez" | "stablelm2" => spec(&[QWEN2]),
        // llama.cpp's fallback for files older than the key; a poor match for most vocabularies
        "default" => spec(&[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"]),
        other => bail!(
            "tokenizer.ggml.pre '{other}' is not supported (supported: smollm, starcoder, refact, \
             command-r, codeshell, gpt-2, phi-2, mpt, olmo, llama3, llama-v3, llama-bpe, falcon3, \
             dbrx, smaug-bpe, qwen2, deepseek-r1-qwen, megrez, stablelm2, default)"
        ),
    })
}

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const CONTROL: i32 = 3;
const ISOLATED: SplitDelimiterBehavior = SplitDelimiterBehavior::Isolated;
const USER_DEFINED: i32 = 4;

/// A GGUF file's tokenizer and its special tokens, as plain data.
pub struct GgufTokenizer {
    /// Byte-level BPE; `encode(text, false)` gives llama.cpp's ids for `text` with special
    /// tokens parsed (`<|im_start|>` in the text is its one id).
    pub tokenizer: tokenizers::Tokenizer,
    /// `tokenizer.ggml.bos_token_id`, if set.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id` (required).
    pub eos: u32,
    /// `tokenizer.ggml.padding_token_id`, if set.
    pub pad: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`, if set.
    pub unk: Option<u32>,
    /// Whether a prompt starts with BOS: `tokenizer.ggml.add_bos_token`, else the family's
    /// default ([`PreTokenizerSpec::add_bos`]).
    pub add_bos: bool,
    /// `tokenizer.chat_template` (Jinja), if present.
    pub chat_template: Option<String>,
}

impl GgufTokenizer {
    /// Builds the tokenizer of `file`. Errors name the file and the key: a model other than
    /// `gpt2`, an unknown `tokenizer.ggml.pre`, a missing vocabulary, merges or EOS, a merge
    /// that is not two tokens of the vocabulary, a special id outside the vocabulary.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let name = file.name();
        let model: &str = file.get("tokenizer.ggml.model")?;
        ensure!(
            model == "gpt2",
            "{name}: tokenizer.ggml.model is '{model}'; only 'gpt2' (byte-level BPE) is supported"
        );
        let pre = file
            .get_opt::<&str>("tokenizer.ggml.pre")?
            .unwrap_or("default");
        let spec = pre_tokenizer(pre).with_context(|| name.to_string())?;
        let tokens = file.get_str_array("tokenizer.ggml.tokens")?;
        let types: Vec<i32> = file
            .get_opt("tokenizer.ggml.token_type")?
            .unwrap_or_default();
        ensure!(
            types.is_empty() || types.len() == tokens.len(),
            "{name}: tokenizer.ggml.token_type has {} entries for {} tokens",
            types.len(),
            tokens.len()
        );
        let merges = parse_merges(&file.get_str_array("tokenizer.ggml.merges")?)
            .with_context(|| format!("{name}: tokenizer.ggml.merges"))?;
        let tokenizer = build(&tokens, &types, merges, spec)
            .with_context(|| format!("{name}: building the tokenizer"))?;
        let id = |key: &str| -> Result<Option<u32>> {
            let id = file.get_opt::<u32>(key)?;
            if let Some(i) = id {
                ensure!(
                    (i as usize) < tokens.len(),
                    "{name}: {key} is {i}, outside the vocabulary of {}",
                    tokens.len()
                );
            }
            Ok(id)
        };
        Ok(Self {
            tokenizer,
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos: id("tokenizer.ggml.eos_token_id")?
                .ok_or_else(|| anyhow!("{name}: no metadata key 'tokenizer.ggml.eos_token_id'"))?,
            pad: id("tokenizer.ggml.padding_token_id")?,
            unk: id("tokenizer.ggml.unknown_token_id")?,
            add_bos: file
                .get_opt("tokenizer.ggml.add_bos_token")?
                .unwrap_or(spec.add_bos),
            chat_template: file
                .get_opt::<&str>("tokenizer.chat_template")?
                .map(String::from),
        })
    }
}

/// Merges as `"a b"` strings to pairs, split at the first space after the first character (as
/// llama.cpp does: a byte-level token never holds a space, but `a` may not be empty).
fn parse_merges(merges: &[&str]) -> Result<Vec<(String, String)>> {
    merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let first = m.chars().next().map_or(0, char::len_utf8);
            match m[first..].find(' ') {
                Some(p) => Ok((m[..first + p].to_string(), m[first + p + 1..].to_string())),
                None => bail!("merge {i} is {m:?}, expected two tokens separated by a space"),
            }
        })
        .collect()
}

/// The byte-level BPE over `tokens` (ids in order; a token listed twice keeps the later id, as
/// llama.cpp's lookup does), control tokens added as special tokens and user-defined ones as
/// added tokens, both matched whole in the raw text.
fn build(
    tokens: &[&str],
    types: &[i32],
    merges: Vec<(String, String)>,
    spec: PreTokenizerSpec,
) -> Result<tokenizers::Tokenizer> {
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(spec.ignore_merges)
        .build()
        .map_err(|e| anyhow!("the BPE model: {e}"))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    let mut steps = spec
        .regexes
        .iter()
        .map(|r| {
            let split = Split::new(SplitPattern::Regex(r.to_string()), ISOLATED, false)
                .map_err(|e| anyhow!("the pre-tokenizer regex {r:?}: {e}"))?;
            Ok(PreTokenizerWrapper::Split(split))
        })
        .collect::<Result<Vec<_>>>()?;
    steps.push(PreTokenizerWrapper::ByteLevel(ByteLevel::new(
        false, true, false,
    )));
    tok.with_pre_tokenizer(Some(Sequence::new(steps)));
    tok.with_decoder(Some(ByteLevelDecoder::new(false, true, true)));
    tok.with_post_processor(Some(ByteLevel::new(true, true, false)));
    let added = |ty: i32, special: bool| -> Vec<AddedToken> {
        tokens
            .iter()
            .zip(types)
            .filter(|(_, &t)| t == ty)
            .map(|(s, _)| AddedToken::from(s.to_string(), special).normalized(false))
            .collect()
    };
    tok.add_special_tokens(&added(CONTROL, true));
    tok.add_tokens(&added(USER_DEFINED, false));
    Ok(tok)
}
