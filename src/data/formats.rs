//! JSON Lines readers and writers for the project's formats. Every malformed line is an error
//! naming the file, the 1-based line number and what is wrong; nothing is skipped silently.
//!
//! - SFT: `{"prompt","response"}`, Alpaca `{"instruction","input","output"}`, a conversation
//!   `{"messages":[{"role","content"},...]}` ending with the assistant's turn, TRL's
//!   `{"prompt","completion"}` (either a string or messages), or an Anthropic HH `{"chosen"}`
//!   dialogue (its `"rejected"` ignored)
//! - Prompts: `{"prompt"}`, the prompt a string or a conversation ending with the user's turn, or
//!   `{"messages":[...]}` ending with the user's turn
//! - Samples: `{"prompt","responses":[...]}`
//!
//! A conversation prompt is read as one string, `template::prompt_text`, which every stage
//! renders like a single prompt (see `template`).
//!
//! Files from Windows editors read as the same records: `\r\n` line ends as `\n`, and a UTF-8
//! byte-order mark at the start is dropped.

use super::conversation::{parse_hh, parse_messages, validate, Ending, Message, Role};
use super::template::prompt_text;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// One demonstration: a validated conversation ending with the assistant's turn; the model
/// learns every assistant turn (a single prompt and response is a one-turn conversation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftRecord {
    pub messages: Vec<Message>,
}

impl SftRecord {
    /// A single prompt and its response.
    pub fn single(prompt: impl Into<String>, response: impl Into<String>) -> Self {
        Self {
            messages: vec![
                Message::new(Role::User, prompt),
                Message::new(Role::Assistant, response),
            ],
        }
    }

    /// The last assistant turn.
    pub fn response(&self) -> &str {
        self.messages.last().map_or("", |m| m.content.as_str())
    }
}

/// K responses to one prompt (what `rlhf sample` writes and `rlhf label` reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    pub prompt: String,
    pub responses: Vec<String>,
}

/// Reads a JSONL file line by line as JSON objects; blank lines are allowed and ignored.
/// Calls `f(line_number, object)` for each record.
pub fn read_objects(
    path: &Path,
    mut f: impl FnMut(usize, Map<String, Value>) -> Result<()>,
) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let n = i + 1;
        let bytes = line.with_context(|| format!("{}:{n}: reading", path.display()))?;
        let bytes = if n == 1 {
            strip_bom(path, &bytes)?
        } else {
            &bytes[..]
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|e| anyhow::anyhow!("{}:{n}: not valid UTF-8 ({e})", path.display()))?;
        // trims the `\r` of a `\r\n` line end too (and a blank `\r\n` line is blank)
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}:{n}: malformed JSON: {e}", path.display()))?;
        match v {
            Value::Object(m) => f(n, m).with_context(|| format!("{}:{n}", path.display()))?,
            other => bail!(
                "{}:{n}: expected a JSON object, found {}",
                path.display(),
                kind(&other)
            ),
        }
    }
    Ok(())
}

/// `start` (the first bytes of a file) without a UTF-8 byte-order mark, which Windows tools write
/// (PowerShell's `Set-Content -Encoding UTF8`, Notepad before 2019). A UTF-16 mark is an error
/// saying so: PowerShell 5's `>` and `Out-File` write UTF-16, which no reader here takes.
pub fn strip_bom<'a>(path: &Path, start: &'a [u8]) -> Result<&'a [u8]> {
    if let Some(rest) = start.strip_prefix(b"\xEF\xBB\xBF") {
        return Ok(rest);
    }
    if start.starts_with(b"\xFF\xFE") || start.starts_with(b"\xFE\xFF") {
        bail!(
            "{}: the file is UTF-16 (as PowerShell's `>` writes); save it as UTF-8",
            path.display()
        );
    }
    Ok(start)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A required string field.
pub fn get_str(m: &Map<String, Value>, key: &str) -> Result<String> {
    match m.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => bail!("field \"{key}\" must be a string, found {}", kind(other)),
        None => bail!("missing field \"{key}\""),
    }
}

fn get_opt_str(m: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => get_str(m, key).map(Some),
    }
}

/// Reads SFT demonstrations (any of the formats above, may be mixed). Empty prompts or
/// responses and malformed conversations are errors.
pub fn read_sft(path: &Path) -> Result<Vec<SftRecord>> {
    let mut out = Vec::new();
    read_objects(path, |_, m| {
        let messages = sft_messages(&m)?;
        if let (false, [u, a]) = (m.contains_key("messages"), messages.as_slice()) {
            // a single prompt and response: say which is empty in the record's own terms
            if u.role == Role::User && u.content.trim().is_empty() {
                bail!("empty prompt");
            }
            if a.role == Role::Assistant && a.content.trim().is_empty() {
                bail!("empty response");
            }
        }
        validate(&messages, Ending::Assistant)?;
        out.push(SftRecord { messages });
        Ok(())
    })?;
    if out.is_empty() {
        bail!("{}: no records", path.display());
    }
    Ok(out)
}

fn sft_messages(m: &Map<String, Value>) -> Result<Vec<Message>> {
    if let Some(v) = m.get("messages") {
        return parse_messages(v);
    }
    if m.contains_key("instruction") {
        let instruction = get_str(m, "instruction")?;
        let input = get_opt_str(m, "input")?.unwrap_or_default();
        let prompt = if input.trim().is_empty() {
            instruction
        } else {
            format!("{instruction}\n{input}")
        };
        return Ok(single(prompt, get_str(m, "output")?));
    }
    if let Some(p) = m.get("prompt") {
        let mut messages = prompt_messages(p)?;
        messages.extend(match (m.get("response"), m.get("completion")) {
            (Some(_), _) => vec![Message::new(Role::Assistant, get_str(m, "response")?)],
            (None, Some(c)) => completion(c)?,
            (None, None) => bail!("missing field \"response\""),
        });
        return Ok(messages);
    }
    if m.contains_key("chosen") {
        return parse_hh(&get_str(m, "chosen")?).context("field \"chosen\"");
    }
    bail!(
        "expected {{\"prompt\",\"response\"}}, {{\"messages\"}}, \
         Alpaca {{\"instruction\",\"input\",\"output\"}} or HH {{\"chosen\"}}"
    );
}

fn single(prompt: String, response: String) -> Vec<Message> {
    SftRecord::single(prompt, response).messages
}

/// A `"prompt"` value: a string (one user turn) or a conversation.
fn prompt_messages(v: &Value) -> Result<Vec<Message>> {
    match v {
        Value::String(s) => Ok(vec![Message::new(Role::User, s.clone())]),
        Value::Array(_) => parse_messages(v).context("field \"prompt\""),
        other => bail!(
            "field \"prompt\" must be a string or an array of messages, found {}",
            kind(other)
        ),
    }
}

/// A `"completion"` value: a string or the assistant's messages.
fn completion(v: &Value) -> Result<Vec<Message>> {
    match v {
        Value::String(s) => Ok(vec![Message::new(Role::Assistant, s.clone())]),
        _ => parse_messages(v).context("field \"completion\""),
    }
}

/// The prompt of a record as one string (see the module docs): `"messages"` or `"prompt"`, a
/// conversation ending with the user's turn or a string.
pub fn get_prompt(m: &Map<String, Value>) -> Result<String> {
    let messages = match (m.get("messages"), m.get("prompt")) {
        (Some(v), _) => parse_messages(v)?,
        (None, Some(v)) => prompt_messages(v)?,
        (None, None) => bail!("missing field \"prompt\""),
    };
    if messages.len() == 1 && messages[0].role == Role::User {
        return Ok(messages[0].content.clone());
    }
    validate(&messages, Ending::User)?;
    Ok(prompt_text(&messages))
}

/// A response value: a string, or a conversation of one assistant message (TRL's conversational
/// preference records).
pub fn response_text(v: &Value, what: &str) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(_) => match parse_messages(v)
            .with_context(|| what.to_string())?
            .as_slice()
        {
            [m] if m.role == Role::Assistant => Ok(m.content.clone()),
            _ => bail!("{what} must be a string or one assistant message"),
        },
        other => bail!("{what} must be a string, found {}", kind(other)),
    }
}

/// Reads prompts (`{"prompt"}`; a samples file also works, its responses are ignored).
pub fn read_prompts(path: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    read_objects(path, |_, m| {
        let p = get_prompt(&m)?;
        if p.trim().is_empty() {
            bail!("empty prompt");
        }
        out.push(p);
        Ok(())
    })?;
    if out.is_empty() {
        bail!("{}: no prompts", path.display());
    }
    Ok(out)
}

/// Reads a samples file.
pub fn read_samples(path: &Path) -> Result<Vec<SampleRecord>> {
    let mut out = Vec::new();
    read_objects(path, |_, m| {
        let prompt = get_str(&m, "prompt")?;
        let responses = match m.get("responses") {
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => bail!("responses[{i}] must be a string, found {}", kind(other)),
                })
                .collect::<Result<Vec<_>>>()?,
            Some(other) => bail!(
                "field \"responses\" must be an array, found {}",
                kind(other)
            ),
            None => bail!("missing field \"responses\""),
        };
        out.push(SampleRecord { prompt, responses });
        Ok(())
    })?;
    Ok(out)
}

/// Reads a UTF-8 text file (a corpus). Invalid UTF-8 is an error naming the file, the line and
/// the byte offset of the first bad byte; so is a file with nothing but whitespace. `\r\n` line
/// ends read as `\n` and a byte-order mark is dropped, so a copy saved on Windows (or checked out
/// there with `core.autocrlf`) is the same text: the same tokenizer, paragraphs and model.
pub fn read_text(path: &Path) -> Result<String> {
    let mut bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bom = bytes.len() - strip_bom(path, &bytes)?.len();
    bytes.drain(..bom);
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        anyhow::anyhow!(
            "{}:{line}: not valid UTF-8 (byte offset {}); text files must be UTF-8",
            path.display(),
            at + bom
        )
    })?;
    if text.trim().is_empty() {
        bail!("{}: the file is empty", path.display());
    }
    if text.contains("\r\n") {
        return Ok(text.replace("\r\n", "\n"));
    }
    Ok(text)
}

/// Writes records as JSON Lines, atomically.
pub fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<()> {
    let mut buf = Vec::new();
    for r in records {
        serde_json::to_writer(&mut buf, r)?;
        buf.write_all(b"\n")?;
    }
    crate::util::fs::write_atomic(path, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("rlhf-formats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn sft_both_formats() {
        let p = tmp(
            "a.jsonl",
            "{\"prompt\":\"Define: Cat\",\"response\":\"A soft machine.\"}\n\n\
             {\"instruction\":\"Say\",\"input\":\"hi\",\"output\":\"hello\"}\n",
        );
        let r = read_sft(&p).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1], SftRecord::single("Say\nhi", "hello"));
    }

    #[test]
    fn errors_name_file_and_line() {
        let p = tmp(
            "b.jsonl",
            "{\"prompt\":\"a\",\"response\":\"b\"}\n{\"prompt\":\"a\"}\n",
        );
        let e = format!("{:#}", read_sft(&p).unwrap_err());
        assert!(
            e.contains("b.jsonl:2") && e.contains("missing field \"response\""),
            "{e}"
        );
        let p = tmp("c.jsonl", "{\"prompt\": 3, \"response\":\"b\"}\n");
        let e = format!("{:#}", read_sft(&p).unwrap_err());
        assert!(
            e.contains("c.jsonl:1") && e.contains("must be a string"),
            "{e}"
        );
        let p = tmp("d.jsonl", "{oops\n");
        let e = format!("{:#}", read_prompts(&p).unwrap_err());
        assert!(
            e.contains("d.jsonl:1") && e.contains("malformed JSON"),
            "{e}"
        );
    }
}
