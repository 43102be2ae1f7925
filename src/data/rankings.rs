//! Reward-model data: K-wise rankings of responses to one prompt, best first.
//!
//! Accepted records (may be mixed in one file):
//! - `{"prompt", "responses": [best, second, ...]}` with 2 ≤ K ≤ 9;
//! - pairwise `{"prompt", "chosen", "rejected"}` (K = 2);
//! - Anthropic HH `{"chosen", "rejected"}` full dialogues: the shared prefix up to and including
//!   the last `"\n\nAssistant:"` is the prompt (read as a conversation), the rest the two
//!   responses.
//!
//! The prompt may be a conversation ending with the user's turn (`"prompt"` as an array of
//! messages, or `"messages"`), and each response a string or one assistant message, as in TRL's
//! conversational preference records; see `formats`. The labeler scores the responses: the final
//! assistant turn.
//!
//! A record with K < 2 or K > 9, a duplicated response, or an empty response is an error naming
//! the file and line — or, with `skip_invalid`, skipped and counted. Never silent.

use super::conversation::{parse_hh, validate as validate_conversation, Ending};
use super::formats::{get_prompt, read_objects, response_text};
use super::template::prompt_text;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

/// Responses to one prompt, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    pub prompt: String,
    pub responses: Vec<String>,
}

/// Largest K the paper used (and the ranking kernel supports).
pub const MAX_K: usize = 9;

/// What reading a rankings file found.
#[derive(Debug, Clone, Default)]
pub struct ReadReport {
    /// Records skipped with `skip_invalid`, as "line N: reason".
    pub skipped: Vec<String>,
}

fn split_hh(chosen: &str, rejected: &str) -> Result<(String, String, String)> {
    let common = chosen
        .bytes()
        .zip(rejected.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let mut cut = common;
    while !chosen.is_char_boundary(cut) {
        cut -= 1;
    }
    let shared = &chosen[..cut];
    let marker = "\n\nAssistant:";
    let p = match shared.rfind(marker) {
        Some(i) => i + marker.len(),
        None => shared
            .rfind(char::is_whitespace)
            .map(|i| i + 1)
            .unwrap_or(0),
    };
    if p == 0 {
        bail!("\"chosen\" and \"rejected\" share no prompt prefix");
    }
    let prompt = match parse_hh(&chosen[..p]) {
        Ok(m) => {
            validate_conversation(&m, Ending::User)?;
            prompt_text(&m)
        }
        // not a dialogue: the shared text, cut at a word, is the prompt
        Err(_) => chosen[..p].to_string(),
    };
    Ok((prompt, chosen[p..].to_string(), rejected[p..].to_string()))
}

fn parse(m: &Map<String, Value>) -> Result<Ranking> {
    if let Some(v) = m.get("responses") {
        let Value::Array(a) = v else {
            bail!("field \"responses\" must be an array of strings")
        };
        let responses = a
            .iter()
            .enumerate()
            .map(|(i, x)| response_text(x, &format!("responses[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        return Ok(Ranking {
            prompt: get_prompt(m)?,
            responses,
        });
    }
    let field = |k: &str| match m.get(k) {
        Some(v) => response_text(v, &format!("field \"{k}\"")),
        None => bail!("missing field \"{k}\""),
    };
    let (chosen, rejected) = (field("chosen")?, field("rejected")?);
    if m.contains_key("prompt") || m.contains_key("messages") {
        return Ok(Ranking {
            prompt: get_prompt(m)?,
            responses: vec![chosen, rejected],
        });
    }
    let (prompt, c, r) = split_hh(&chosen, &rejected)?;
    Ok(Ranking {
        prompt,
        responses: vec![c, r],
    })
}

fn validate(r: &Ranking) -> Result<()> {
    let k = r.responses.len();
    if k < 2 {
        bail!("a ranking needs at least 2 responses, found {k}");
    }
    if k > MAX_K {
        bail!("at most {MAX_K} responses per prompt are supported, found {k}");
    }
    if r.prompt.trim().is_empty() {
        bail!("empty prompt");
    }
    for (i, x) in r.responses.iter().enumerate() {
        if x.trim().is_empty() {
            bail!("response {i} is empty");
        }
        if let Some(j) = r.responses[..i].iter().position(|y| y.trim() == x.trim()) {
            bail!("responses {j} and {i} are the same text; a ranking needs distinct responses");
        }
    }
    Ok(())
}

/// Reads rankings; see the module docs for formats and validation.
pub fn read_rankings(path: &Path, skip_invalid: bool) -> Result<(Vec<Ranking>, ReadReport)> {
    let mut out = Vec::new();
    let mut report = ReadReport::default();
    read_objects(path, |line, m| {
        let r = parse(&m).and_then(|r| validate(&r).map(|_| r));
        match r {
            Ok(r) => out.push(r),
            Err(e) if skip_invalid => report.skipped.push(format!("line {line}: {e}")),
            Err(e) => return Err(e.context("(pass --skip-invalid to skip such records)")),
        }
        Ok(())
    })?;
    if out.is_empty() {
        bail!("{}: no valid rankings", path.display());
    }
    Ok((out, report))
}

/// [`read_rankings`] for a stage: the skipped records (with `skip_invalid`) are counted and the
/// first three printed to standard error, prefixed by `stage`. → (rankings, records skipped)
pub fn read_rankings_reported(
    path: &Path,
    skip_invalid: bool,
    stage: &str,
) -> Result<(Vec<Ranking>, usize)> {
    let (rankings, report) = read_rankings(path, skip_invalid)?;
    if !report.skipped.is_empty() {
        let first: Vec<String> = report.skipped.iter().take(3).cloned().collect();
        eprintln!(
            "{stage}: skipped {} invalid records of {}: {}",
            report.skipped.len(),
            path.display(),
            first.join("; ")
        );
    }
    Ok((rankings, report.skipped.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hh_split_takes_prefix_through_last_assistant() {
        let c = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: joke?\n\nAssistant: Sure, here it is.";
        let r = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: joke?\n\nAssistant: No.";
        let (p, a, b) = split_hh(c, r).unwrap();
        assert_eq!(p, "hi\nResponse: hello<|endoftext|>joke?");
        assert_eq!(a, " Sure, here it is.");
        assert_eq!(b, " No.");
    }

    #[test]
    fn validation_rules() {
        let ok = Ranking {
            prompt: "p".into(),
            responses: vec!["a".into(), "b".into()],
        };
        assert!(validate(&ok).is_ok());
        let dup = Ranking {
            prompt: "p".into(),
            responses: vec!["a".into(), "a ".into()],
        };
        assert!(format!("{}", validate(&dup).unwrap_err()).contains("same text"));
        let one = Ranking {
            prompt: "p".into(),
            responses: vec!["a".into()],
        };
        assert!(validate(&one).is_err());
        let empty = Ranking {
            prompt: "p".into(),
            responses: vec!["a".into(), " ".into()],
        };
        assert!(validate(&empty).is_err());
    }
}
