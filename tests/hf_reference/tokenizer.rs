//! The GPT-2 tokenizer (`--tokenizer gpt2`) against tiktoken's `r50k_base`, OpenAI's own.

use rlhf::data::tokenizer::Tok;

/// Paragraphs mixed into Austen so the tokenizer sees accents, dashes, quotes, CJK, Hangul,
/// Cyrillic, Greek, emoji (with modifiers and ZWJ sequences), symbols and odd whitespace.
const NON_ASCII: &[&str] = &[
    "Café au lait, naïve façade, jalapeño, Zürich, Ångström, crème brûlée, São Paulo, Łódź.",
    "She paused — then, with a sigh – went on… “Quite so,” said he; ‘indeed’ — «très bien».",
    "東京は日本の首都です。中文测试：你好，世界！我们在这里。",
    "한국어 문장입니다. Русский текст: Привет, мир! Ελληνικά: Γειά σου κόσμε. עברית: שלום.",
    "Emoji: 😀🎉👍🏽 ❤️ 🇫🇷 👨‍👩‍👧 and a flag 🏳️‍🌈, then done.",
    "Math: ∑ x² ≤ ∞, ½ + ¼ = ¾, €5 £3 ¥100 © ® ™ ° µ — Ω ≈ π.",
    "Tabs\tand   multiple    spaces,\u{a0}non-breaking,\r\nCRLF lines,   trailing   \n  \n",
    "Numbers 1234567890 3.14159 and contractions: don't, I'll, we've, they're, it's, she'd, I'm.",
];

#[test]
fn gpt2_tokenizer_matches_tiktoken_r50k_base() {
    let ours = Tok::open("gpt2").unwrap(); // what `--tokenizer gpt2` loads
    assert_eq!(ours.vocab_size(), 50257);
    assert_eq!(ours.eot, 50256);
    assert_eq!(ours.encode("Hello world").unwrap(), vec![15496, 995]);
    assert_eq!(ours.encode("<|endoftext|>").unwrap(), vec![50256]);
    let reference = tiktoken_rs::r50k_base().unwrap();
    let emma = std::fs::read_to_string(crate::common::assets().join("austen/emma.txt")).unwrap();
    let mansfield =
        std::fs::read_to_string(crate::common::assets().join("austen/mansfieldpark.txt")).unwrap();
    let pound = mansfield.split("\n\n").find(|p| p.contains('£')).unwrap();
    let mut paragraphs: Vec<&str> = vec![pound];
    for (i, p) in emma.split("\n\n").take(900).enumerate() {
        paragraphs.push(p);
        if i % 8 == 0 {
            paragraphs.push(NON_ASCII[(i / 8) % NON_ASCII.len()]);
        }
    }
    let (mut bytes, mut non_ascii, mut tokens) = (0, 0, 0);
    for chunk in paragraphs.chunks(40) {
        let text = chunk.join("\n\n");
        let want = reference.encode_ordinary(&text);
        let got = ours.encode(&text).unwrap();
        if got != want {
            let k = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
            panic!(
                "token {k} differs: ours {:?} tiktoken {:?} near {:?}",
                &got[k..(k + 5).min(got.len())],
                &want[k..(k + 5).min(want.len())],
                ours.decode(&got[k.saturating_sub(5)..(k + 5).min(got.len())])
            );
        }
        assert_eq!(ours.decode(&got).unwrap(), text, "decode(encode(x)) != x");
        bytes += text.len();
        non_ascii += text.chars().filter(|c| !c.is_ascii()).count();
        tokens += got.len();
    }
    assert!(bytes >= 100_000, "only {bytes} bytes compared");
    assert!(non_ascii >= 2_000, "only {non_ascii} non-ASCII characters");
    eprintln!("{bytes} bytes, {non_ascii} non-ASCII chars, {tokens} tokens: identical");
}
