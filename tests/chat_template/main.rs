//! Chat templates (`rlhf::chat_template`): renderings compared byte for byte with
//! `transformers`' `apply_chat_template` (fixtures in `tests/chat_template_reference/`, made by
//! its `make_reference.py`), assistant spans, token masks and template errors.
//! One test binary for the area (each links the whole crate): a module per file.

mod errors;
mod reference;
mod spans;

use rlhf::chat_template::{ChatTemplate, Message, SpecialTokens};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use time::{Date, Month, PrimitiveDateTime};

/// `tests/chat_template_reference/renderings.json`.
#[derive(Deserialize)]
pub struct Reference {
    /// The time `strftime_now` read when `transformers` rendered, `YYYY-MM-DDTHH:MM:SS`.
    pub now: String,
    pub conversations: BTreeMap<String, Vec<Message>>,
    pub templates: BTreeMap<String, TemplateReference>,
    pub extras: BTreeMap<String, Extra>,
}

/// A model's template file, its special tokens, and `transformers`' renderings of each
/// conversation, keyed `"<conversation>/gen"` or `"<conversation>/nogen"`.
#[derive(Deserialize)]
pub struct TemplateReference {
    pub file: String,
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub renderings: BTreeMap<String, String>,
}

/// A small template exercising one helper, and its rendering of `tricky_content`.
#[derive(Deserialize)]
pub struct Extra {
    pub template: String,
    pub bos: Option<String>,
    pub rendered: String,
}

pub fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chat_template_reference")
}

pub fn reference() -> Reference {
    let text = std::fs::read_to_string(reference_dir().join("renderings.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `YYYY-MM-DDTHH:MM:SS` as a time.
pub fn parse_now(s: &str) -> PrimitiveDateTime {
    let n: Vec<u32> = s
        .split(['-', 'T', ':'])
        .map(|p| p.parse().unwrap())
        .collect();
    let month = Month::try_from(n[1] as u8).unwrap();
    let date = Date::from_calendar_date(n[0] as i32, month, n[2] as u8).unwrap();
    date.with_hms(n[3] as u8, n[4] as u8, n[5] as u8).unwrap()
}

/// The model template `name` of the reference, with its special tokens and clock.
pub fn model_template(r: &Reference, name: &str) -> ChatTemplate {
    let t = &r.templates[name];
    let source = std::fs::read_to_string(reference_dir().join(&t.file)).unwrap();
    let special = SpecialTokens {
        bos: t.bos.clone(),
        eos: t.eos.clone(),
    };
    ChatTemplate::new(&source, special)
        .unwrap()
        .with_now(parse_now(&r.now))
}
