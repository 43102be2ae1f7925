//! Template errors come back as errors that say where and what: a syntax error names its line,
//! `raise_exception(message)` surfaces the message, an empty conversation is refused.

use rlhf::chat_template::{ChatTemplate, Message, SpecialTokens};

/// Fails if compiling swallowed the error or lost the line (here line 3 of the source).
#[test]
fn a_syntax_error_names_its_line() {
    let source = "{% for m in messages %}\n{{ m.content }}\n{{ m.role + }}\n{% endfor %}";
    let err = ChatTemplate::new(source, SpecialTokens::default())
        .err()
        .unwrap();
    let err = format!("{err:#}");
    assert!(
        err.contains("compiling the chat template: line 3: syntax error"),
        "{err}"
    );
}

/// The message of `raise_exception`, as templates use it to refuse a conversation they cannot
/// render (Llama 3.2's for tools without a user message, Mistral's for roles out of turn).
/// Fails if `raise_exception` were undefined (an "unknown function" error) or its message lost.
#[test]
fn raise_exception_surfaces_its_message() {
    let source = "{% if messages[0].role != 'user' %}\
                  {{ raise_exception('Conversations must start with a user message') }}\
                  {% endif %}{{ messages[0].content }}";
    let template = ChatTemplate::new(source, SpecialTokens::default()).unwrap();
    assert_eq!(
        template.render(&[Message::user("hi")], false).unwrap(),
        "hi"
    );
    let err = template.render(&[Message::system("s")], false).unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("line 1: ") && err.contains("must start with a user message"),
        "{err}"
    );
}

/// `transformers` refuses an empty conversation; so does `render`.
#[test]
fn an_empty_conversation_is_refused() {
    let template = ChatTemplate::new("{{ messages }}", SpecialTokens::default()).unwrap();
    let err = format!("{:#}", template.render(&[], false).unwrap_err());
    assert!(err.contains("empty conversation"), "{err}");
}
