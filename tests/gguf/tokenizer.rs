//! The tokenizer built from `tokenizer.ggml.*`, on a small byte-level vocabulary written here:
//! the pre-tokenizer `tokenizer.ggml.pre` names (digits alone or in runs of three, GPT-2's
//! grouping), Llama 3's whole-word lookup, control and user-defined tokens matched whole, byte
//! round trips, the special ids, and errors. (The real SmolLM2 vocabulary against transformers
//! is in `smollm2.rs`.)

use super::{assert_mentions, json, message};
use rlhf::gguf::write::array;
use rlhf::gguf::{GgufFile, GgufTokenizer, GgufWriter, Value, ValueType};
use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

/// GPT-2's byte alphabet (`bytes_to_unicode`): printable bytes stand for themselves, the others
/// for U+0100 onwards in byte order (space is `Ġ`, newline `Ċ`).
fn byte_chars() -> Vec<char> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut next = 256;
    (0..=255u8)
        .map(|b| {
            if printable(b) {
                b as char
            } else {
                next += 1;
                char::from_u32(next - 1).unwrap()
            }
        })
        .collect()
}

/// Ids 0..256 are the bytes; then merged tokens, then special ones.
const EXTRA: [(&str, i32); 9] = [
    ("12", 1),
    ("123", 1),
    ("hi", 1),
    ("\u{120}hi", 1),
    ("ab", 1),
    ("abc", 1), // in the vocabulary, but no merge makes it
    ("<|im_start|>", 3),
    ("<think>", 4),
    ("<|endoftext|>", 3),
];
const MERGES: [&str; 5] = ["1 2", "12 3", "h i", "\u{120} hi", "a b"];
const IM_START: u32 = 262;
const THINK: u32 = 263;
const EOT: u32 = 264;

fn strings(items: &[String]) -> Value {
    array(
        ValueType::String,
        items.iter().map(|s| Value::String(s.clone())),
    )
}

/// The vocabulary's metadata with `pre` (None: no key), then `extra` keys replacing any.
fn metadata(pre: Option<&str>, extra: &[(&str, Value)]) -> Vec<(String, Value)> {
    let mut tokens: Vec<String> = byte_chars().iter().map(|c| c.to_string()).collect();
    let mut types = vec![1; 256];
    for (t, ty) in EXTRA {
        tokens.push(t.to_string());
        types.push(ty);
    }
    let merges: Vec<String> = MERGES.iter().map(|m| m.to_string()).collect();
    let mut kv = vec![
        (
            "tokenizer.ggml.model".to_string(),
            Value::String("gpt2".into()),
        ),
        ("tokenizer.ggml.tokens".into(), strings(&tokens)),
        (
            "tokenizer.ggml.token_type".into(),
            array(ValueType::I32, types.into_iter().map(Value::I32)),
        ),
        ("tokenizer.ggml.merges".into(), strings(&merges)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(EOT)),
        ("tokenizer.ggml.padding_token_id".into(), Value::U32(EOT)),
        (
            "tokenizer.chat_template".into(),
            Value::String("{{ messages }}".into()),
        ),
    ];
    if let Some(p) = pre {
        kv.push(("tokenizer.ggml.pre".into(), Value::String(p.into())));
    }
    for (k, v) in extra {
        kv.retain(|(key, _)| key != k);
        kv.push((k.to_string(), v.clone()));
    }
    kv
}

fn build_from(kv: Vec<(String, Value)>) -> anyhow::Result<GgufTokenizer> {
    let mut w = GgufWriter::new();
    for (k, v) in kv {
        w.add_metadata(k, v).unwrap();
    }
    let mut bytes = Vec::new();
    w.write_to(&mut bytes).unwrap();
    GgufTokenizer::from_gguf(&GgufFile::from_bytes("vocab.gguf", bytes).unwrap())
}

fn tok(pre: &str) -> GgufTokenizer {
    build_from(metadata(Some(pre), &[])).unwrap()
}

fn ids(t: &GgufTokenizer, text: &str) -> Vec<u32> {
    t.tokenizer.encode(text, false).unwrap().get_ids().to_vec()
}

/// Our pre-tokenizer for each family cuts the strings of `pre_tokenizers.json` into the pieces
/// `tokenizers` makes with the family's own construction (gpt-2: `ByteLevel`'s regex; smollm:
/// `Digits` + `ByteLevel`; llama-bpe, qwen2: transformers' split regexes).
#[test]
fn pre_tokenizers_cut_as_each_family_does() {
    let doc = json("pre_tokenizers.json");
    let strings = doc["strings"].as_array().unwrap();
    let families = doc["pieces"].as_object().unwrap();
    assert_eq!(families.len(), 4);
    for (family, expected) in families {
        let t = tok(family);
        let pre = t.tokenizer.get_pre_tokenizer().unwrap();
        for (s, want) in strings.iter().zip(expected.as_array().unwrap()) {
            let s = s.as_str().unwrap();
            let mut p = PreTokenizedString::from(s);
            pre.pre_tokenize(&mut p).unwrap();
            let got: Vec<String> = p
                .get_splits(OffsetReferential::Original, OffsetType::Char)
                .into_iter()
                .map(|(piece, _, _)| piece.to_string())
                .collect();
            let want: Vec<String> = serde_json::from_value(want.clone()).unwrap();
            assert_eq!(got, want, "{family}: {s:?}");
        }
    }
}

#[test]
fn digits_split_as_the_family_does() {
    let (one, two, three, four) = (b'1' as u32, b'2' as u32, b'3' as u32, b'4' as u32);
    // smollm and qwen2: every digit alone, although "1 2" and "12 3" are merges
    assert_eq!(ids(&tok("smollm"), "123"), [one, two, three]);
    assert_eq!(ids(&tok("qwen2"), "123"), [one, two, three]);
    // GPT-2's regex keeps the run: merged to "123"
    assert_eq!(ids(&tok("gpt-2"), "123"), [257]);
    // Llama 3: runs of up to three digits
    assert_eq!(ids(&tok("llama-bpe"), "1234"), [257, four]);
    // smollm: the space before a number stays alone (the digit regex cut it off), " hi"
    // merges to one token; id 32 is the byte ' ' (spelled 'Ġ')
    assert_eq!(ids(&tok("smollm"), " hi 12"), [259, 32, one, two]);
    assert_eq!(ids(&tok("gpt-2"), " hi 12"), [259, 32, 256]);
}

#[test]
fn llama3_takes_a_whole_word_without_merging() {
    // "abc" is a token, but no merge joins "ab" and "c": only ignore_merges finds it
    assert_eq!(ids(&tok("llama-bpe"), "abc"), [261]);
    assert_eq!(ids(&tok("gpt-2"), "abc"), [260, b'c' as u32]);
}

#[test]
fn control_and_user_defined_tokens_are_matched_whole() {
    for pre in ["smollm", "qwen2", "llama-bpe", "gpt-2"] {
        let t = tok(pre);
        let text = "<|im_start|>hi<think><|endoftext|>";
        let got = ids(&t, text);
        assert_eq!(got, [IM_START, 258, THINK, EOT], "{pre}");
        assert_eq!(t.tokenizer.decode(&got, false).unwrap(), text, "{pre}");
        // control tokens are special (skipped on request), user-defined ones are text
        assert_eq!(
            t.tokenizer.decode(&got, true).unwrap(),
            "hi<think>",
            "{pre}"
        );
    }
}

#[test]
fn bytes_round_trip() {
    let t = tok("smollm");
    let text = "h\u{e9}llo \u{2713}\n\t \u{1f980} 12";
    let got = ids(&t, text);
    assert_eq!(
        &got[..3],
        [b'h' as u32, 0xC3, 0xA9],
        "é is its two UTF-8 bytes"
    );
    assert_eq!(t.tokenizer.decode(&got, false).unwrap(), text);
}

#[test]
fn special_ids_add_bos_and_template() {
    let t = tok("smollm");
    assert_eq!(
        (t.bos, t.eos, t.pad, t.unk, t.add_bos),
        (None, EOT, Some(EOT), None, false)
    );
    assert_eq!(t.chat_template.as_deref(), Some("{{ messages }}"));
    // Llama 3 adds BOS unless the file says otherwise
    assert!(tok("llama-bpe").add_bos);
    let kv = metadata(
        Some("llama-bpe"),
        &[
            ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
            ("tokenizer.ggml.bos_token_id", Value::U32(IM_START)),
            ("tokenizer.ggml.unknown_token_id", Value::I32(0)),
        ],
    );
    let t = build_from(kv).unwrap();
    assert_eq!((t.bos, t.unk, t.add_bos), (Some(IM_START), Some(0), false));
    // no tokenizer.ggml.pre: llama.cpp's default (its regexes keep "123" whole here)
    let t = build_from(metadata(None, &[])).unwrap();
    assert_eq!(ids(&t, "123"), [257]);
}

#[test]
fn errors_name_the_problem() {
    let err =
        |pre: Option<&str>, extra: &[(&str, Value)]| message(build_from(metadata(pre, extra)));
    assert_mentions(
        &err(Some("bloom"), &[]),
        &[
            "vocab.gguf",
            "tokenizer.ggml.pre 'bloom' is not supported (supported: smollm",
        ],
    );
    let llama = [("tokenizer.ggml.model", Value::String("llama".into()))];
    assert_mentions(
        &err(Some("smollm"), &llama),
        &["tokenizer.ggml.model is 'llama'; only 'gpt2' (byte-level BPE) is supported"],
    );
    let mut kv = metadata(Some("smollm"), &[]);
    kv.retain(|(k, _)| k != "tokenizer.ggml.eos_token_id");
    let msg = message(build_from(kv));
    assert_eq!(
        msg,
        "vocab.gguf: no metadata key 'tokenizer.ggml.eos_token_id'"
    );
    let msg = err(
        Some("smollm"),
        &[("tokenizer.ggml.eos_token_id", Value::U32(999))],
    );
    assert_mentions(
        &msg,
        &["tokenizer.ggml.eos_token_id is 999, outside the vocabulary of 265"],
    );
    let bad = strings(&["1 2".into(), "ab".into()]);
    let msg = err(Some("smollm"), &[("tokenizer.ggml.merges", bad)]);
    assert_mentions(
        &msg,
        &[
            "tokenizer.ggml.merges",
            "merge 1 is \"ab\", expected two tokens",
        ],
    );
    let unknown = strings(&["x yz".into()]);
    let msg = err(Some("smollm"), &[("tokenizer.ggml.merges", unknown)]);
    assert_mentions(&msg, &["vocab.gguf: building the tokenizer", "yz"]);
    let types = array(ValueType::I32, [Value::I32(1)]);
    let msg = err(Some("smollm"), &[("tokenizer.ggml.token_type", types)]);
    assert_mentions(
        &msg,
        &["tokenizer.ggml.token_type has 1 entries for 265 tokens"],
    );
}
