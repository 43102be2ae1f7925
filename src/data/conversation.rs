//! Conversations: the `{"messages": [{"role", "content"}, ...]}` format (TRL's and OpenAI's
//! conversational JSON Lines) and Anthropic HH dialogues (`"\n\nHuman: … \n\nAssistant: …"`),
//! read into one validated shape. How a conversation becomes model text is `template`'s job.
//!
//! A conversation is an optional `system` message first, then `user` and `assistant` turns
//! alternating, starting with `user`. Every content is non-empty. Anything else (an unknown role,
//! two user turns in a row, a system message later on, an empty content) is an error saying which
//! message is wrong; the readers add the file and line.

use anyhow::{anyhow, bail, Result};

use serde_json::Value;

/// The message and role types are the chat templates' own: a conversation read here renders
/// without conversion.
pub use crate::chat_template::{Message, Role};

/// The role named `s` in a file.
fn parse_role(s: &str) -> Result<Role> {
    match s {
        "system" => Ok(Role::System),
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        other => {
            bail!("unknown role \"{other}\" (expected \"system\", \"user\" or \"assistant\")")
        }
    }
}

/// What a conversation must end with where it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A demonstration: the last message is the assistant's (what SFT learns).
    Assistant,
    /// A prompt: the last message is the user's (what the model answers).
    User,
}

/// Checks the role order and contents; see the module docs.
pub fn validate(messages: &[Message], ending: Ending) -> Result<()> {
    if messages.is_empty() {
        bail!("a conversation needs at least one message");
    }
    let mut expect = Role::User;
    for (i, m) in messages.iter().enumerate() {
        if m.content.trim().is_empty() {
            bail!("messages[{i}] ({}) has empty content", role_name(m.role));
        }
        if i == 0 && m.role == Role::System {
            continue;
        }
        if m.role != expect {
            bail!(
                "messages[{i}] is {} where {} was expected (a system message may come first, \
                 then user and assistant alternate, starting with user)",
                role_name(m.role),
                role_name(expect)
            );
        }
        expect = match m.role {
            Role::User => Role::Assistant,
            _ => Role::User,
        };
    }
    let last = messages[messages.len() - 1].role;
    match ending {
        Ending::Assistant if last != Role::Assistant => {
            bail!("a demonstration must end with an assistant message (the response to learn)")
        }
        Ending::User if last != Role::User => {
            bail!("a prompt's conversation must end with a user message (the turn to answer)")
        }
        _ => Ok(()),
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// Parses a JSON array of `{"role", "content"}` objects (no validation of the order).
pub fn parse_messages(v: &Value) -> Result<Vec<Message>> {
    let Value::Array(a) = v else {
        bail!("a conversation must be an array of {{\"role\", \"content\"}} objects");
    };
    a.iter()
        .enumerate()
        .map(|(i, m)| {
            let Value::Object(o) = m else {
                bail!("messages[{i}] must be an object {{\"role\", \"content\"}}");
            };
            let field = |k: &str| match o.get(k) {
                Some(Value::String(s)) => Ok(s.as_str()),
                Some(_) => Err(anyhow!("messages[{i}].{k} must be a string")),
                None => Err(anyhow!("messages[{i}] has no \"{k}\"")),
            };
            let role = parse_role(field("role")?).map_err(|e| anyhow!("messages[{i}]: {e}"))?;
            Ok(Message::new(role, field("content")?))
        })
        .collect()
}

const HUMAN: &str = "\n\nHuman:";
const ASSISTANT: &str = "\n\nAssistant:";

/// Parses an Anthropic HH dialogue: turns introduced by `"\n\nHuman:"` and `"\n\nAssistant:"`
/// (the leading blank lines of the first may be missing). Contents are trimmed. Text before the
/// first marker is an error, and so is a turn with nothing in it except a final
/// `"\n\nAssistant:"` (an HH prompt), which is dropped.
pub fn parse_hh(text: &str) -> Result<Vec<Message>> {
    let text = if text.starts_with("Human:") {
        format!("\n\n{text}")
    } else {
        text.to_string()
    };
    let mut marks: Vec<(usize, Role, usize)> = Vec::new();
    for (marker, role) in [(HUMAN, Role::User), (ASSISTANT, Role::Assistant)] {
        marks.extend(
            text.match_indices(marker)
                .map(|(at, _)| (at, role, marker.len())),
        );
    }
    marks.sort_by_key(|m| m.0);
    match marks.first() {
        None => bail!("no \"\\n\\nHuman:\" turn in the dialogue"),
        Some(&(at, ..)) if !text[..at].trim().is_empty() => {
            bail!("text before the first \"\\n\\nHuman:\" turn")
        }
        _ => {}
    }
    let mut out = Vec::with_capacity(marks.len());
    for (i, &(at, role, len)) in marks.iter().enumerate() {
        let end = marks.get(i + 1).map_or(text.len(), |m| m.0);
        let content = text[at + len..end].trim();
        if content.is_empty() && i + 1 == marks.len() && role == Role::Assistant {
            break; // an HH prompt ends with the empty assistant turn it asks for
        }
        out.push(Message::new(role, content));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_rules() {
        let m = |r, c: &str| Message::new(r, c);
        let ok = [
            m(Role::System, "Be brief."),
            m(Role::User, "hi"),
            m(Role::Assistant, "hello"),
        ];
        assert!(validate(&ok, Ending::Assistant).is_ok());
        let e = validate(&ok, Ending::User).unwrap_err().to_string();
        assert!(e.contains("end with a user message"), "{e}");
        let two_users = [m(Role::User, "a"), m(Role::User, "b")];
        let e = validate(&two_users, Ending::User).unwrap_err().to_string();
        assert!(e.contains("messages[1] is user where assistant"), "{e}");
        let late_system = [m(Role::User, "a"), m(Role::System, "b")];
        assert!(validate(&late_system, Ending::User).is_err());
        let starts_assistant = [m(Role::Assistant, "a")];
        assert!(validate(&starts_assistant, Ending::Assistant).is_err());
        let empty = [m(Role::User, " "), m(Role::Assistant, "b")];
        let e = validate(&empty, Ending::Assistant).unwrap_err().to_string();
        assert!(e.contains("messages[0] (user) has empty content"), "{e}");
    }

    #[test]
    fn unknown_role_and_bad_shapes_are_errors() {
        let e = parse_messages(&json!([{"role": "bot", "content": "x"}]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("messages[0]: unknown role \"bot\""), "{e}");
        let e = parse_messages(&json!([{"role": "user"}]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no \"content\""), "{e}");
        assert!(parse_messages(&json!("hi")).is_err());
    }

    #[test]
    fn hh_dialogues_become_messages() {
        let m =
            parse_hh("\n\nHuman: hi\n\nAssistant: hello\n\nHuman: joke?\n\nAssistant:").unwrap();
        assert_eq!(
            m,
            vec![
                Message::new(Role::User, "hi"),
                Message::new(Role::Assistant, "hello"),
                Message::new(Role::User, "joke?"),
            ]
        );
        let m = parse_hh("Human: a\n\nAssistant: b").unwrap();
        assert_eq!(m.len(), 2);
        assert!(parse_hh("preamble\n\nHuman: a").is_err());
        assert!(parse_hh("no turns").is_err());
    }
}
