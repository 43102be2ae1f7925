//! Renderings equal `transformers`' byte for byte: the three models' templates on every
//! reference conversation with and without the generation prompt, and the helpers
//! `transformers` adds to the environment.

use crate::{model_template, parse_now, reference};
use rlhf::chat_template::{ChatTemplate, SpecialTokens};

/// Every rendering of every template: fails on any whitespace setting, helper or filter that
/// renders differently from `transformers` (e.g. `lstrip_blocks` off, `trim` without Python's
/// whitespace, the clock not injected, a missing default system prompt).
#[test]
fn renderings_equal_transformers() {
    let r = reference();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (name, t) in &r.templates {
        let template = model_template(&r, name);
        for (key, want) in &t.renderings {
            let (conversation, gen) = key.split_once('/').unwrap();
            let got = template
                .render(&r.conversations[conversation], gen == "gen")
                .unwrap();
            if got.as_bytes() != want.as_bytes() {
                wrong.push(format!("{name} {key}:\n  got  {got:?}\n  want {want:?}"));
            }
            checked += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} renderings differ:\n{}",
        wrong.len(),
        { wrong.join("\n") }
    );
    // 3 templates x 5 conversations x with and without the generation prompt
    assert_eq!(checked, 30);
}

/// `tojson` as `json.dumps`, `strftime_now`, `None`/`True` printed as Python prints them, loop
/// controls and namespaces, `trim_blocks`/`lstrip_blocks`/no trailing newline: fails when a
/// helper or setting is minijinja's own instead of `transformers`'.
#[test]
fn environment_helpers_equal_transformers() {
    let r = reference();
    let messages = &r.conversations["tricky_content"];
    for (name, extra) in &r.extras {
        let special = SpecialTokens {
            bos: extra.bos.clone(),
            eos: None,
        };
        let template = ChatTemplate::new(&extra.template, special).unwrap();
        let got = template
            .with_now(parse_now(&r.now))
            .render(messages, false)
            .unwrap();
        assert_eq!(got, extra.rendered, "{name}");
    }
    assert_eq!(r.extras.len(), 6);
}

/// Content is data, not template: `{{ x }}` in a message comes out as written. Fails if the
/// renderer evaluated message text (the reference renderings would then differ too, but this
/// names the cause).
#[test]
fn jinja_in_content_is_not_evaluated() {
    let r = reference();
    let template = model_template(&r, "smollm2");
    let text = template
        .render(&r.conversations["tricky_content"], false)
        .unwrap();
    assert!(text.contains("Render {{ x }} and {% if y %}yes{% endif %} literally."));
}

/// Without `with_now`, `strftime_now` reads today's date (UTC), which the Llama system turn
/// names. Fails if the clock were stuck on a constant.
#[test]
fn clock_defaults_to_today() {
    let r = reference();
    let t = &r.templates["llama3.2"];
    let source = std::fs::read_to_string(crate::reference_dir().join(&t.file)).unwrap();
    let special = SpecialTokens {
        bos: t.bos.clone(),
        eos: t.eos.clone(),
    };
    let template = ChatTemplate::new(&source, special).unwrap();
    let today = || {
        let now = time::OffsetDateTime::now_utc();
        let now = time::PrimitiveDateTime::new(now.date(), now.time());
        rlhf::chat_template::strftime(now, "Today Date: %d %b %Y\n").unwrap()
    };
    // the date before and after rendering: one of them, should the day change in between
    let before = today();
    let text = template
        .render(&r.conversations["one_user"], false)
        .unwrap();
    let after = today();
    assert!(
        text.contains(&before) || text.contains(&after),
        "{text:?} lacks {after:?}"
    );
}
