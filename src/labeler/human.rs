//! The human labeler: a plain line-based terminal session (works over SSH and with piped input;
//! no raw mode) that shows one prompt and its K responses, numbered, and reads a ranking.
//!
//! Input, one line per answer:
//! - `3 1 4 2` (or `3,1,4,2`, or `3142` when K ≤ 9): the response numbers, best first. A shorter
//!   list puts those responses first and the rest after them in the order shown (`3` alone:
//!   response 3 is best, the others keep their order).
//! - `s` skip this prompt, `u` undo the last ranking or skip (also one made before a restart),
//!   `q` quit, `?` help. End of input (Ctrl-D; Ctrl-Z Enter on Windows; a closed pipe) quits
//!   too. A Windows console's `\r\n` line ends are trimmed with the rest of the whitespace.
//!
//! Every ranking is appended to the output and fsynced before the next prompt is shown, and the
//! session resumes where it stopped (see [`super::human_store`]), so Ctrl-C or a crash loses at
//! most the prompt on screen. Invalid input is explained and asked again. Responses are shown as
//! `rlhf label --labeler sentiment` sees them: duplicates and empty ones dropped; prompts left
//! with fewer than 2 are passed over (and counted).

use super::distinct_responses;
use super::human_store::{Action, Store};
use crate::data::formats::SampleRecord;
use crate::data::rankings::{Ranking, MAX_K};
use crate::data::template::display_prompt;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

/// One answer typed by the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A full order of the shown responses, as 0-based indices, best first.
    Rank(Vec<usize>),
    Skip,
    Undo,
    Quit,
    Help,
}

/// Parses one input line for a prompt with `k` responses; the error says what is wrong.
pub fn parse_answer(line: &str, k: usize) -> std::result::Result<Answer, String> {
    let t = line.trim();
    match t.to_lowercase().as_str() {
        "" => {
            return Err(
                "type the response numbers, best first (e.g. `2 1 3`), or ? for help".into(),
            )
        }
        "s" | "skip" => return Ok(Answer::Skip),
        "u" | "undo" => return Ok(Answer::Undo),
        "q" | "quit" | "exit" => return Ok(Answer::Quit),
        "?" | "h" | "help" => return Ok(Answer::Help),
        _ => {}
    }
    let words: Vec<&str> = t
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let compact =
        words.len() == 1 && k <= 9 && t.len() > 1 && t.chars().all(|c| c.is_ascii_digit());
    let items: Vec<String> = if compact {
        t.chars().map(|c| c.to_string()).collect()
    } else {
        words.iter().map(|w| w.to_string()).collect()
    };
    let mut order = Vec::new();
    for w in &items {
        let n: usize = w.parse().map_err(|_| {
            format!(
                "'{w}' is not a response number; type numbers 1 to {k} best first, or s, u, q, ?"
            )
        })?;
        if n == 0 || n > k {
            return Err(format!(
                "there is no response {n}: the numbers go from 1 to {k}"
            ));
        }
        if order.contains(&(n - 1)) {
            return Err(format!("response {n} is listed twice"));
        }
        order.push(n - 1);
    }
    let rest: Vec<usize> = (0..k).filter(|i| !order.contains(i)).collect();
    order.extend(rest);
    Ok(Answer::Rank(order))
}

/// What a session did; totals include earlier sessions on the same output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanReport {
    /// Prompts in the samples file.
    pub prompts: usize,
    /// Prompts with fewer than 2 distinct non-empty responses (never shown).
    pub unrankable: usize,
    /// Records in the rankings file now.
    pub ranked: usize,
    pub skipped: usize,
    /// Rankable prompts still to do.
    pub remaining: usize,
    /// Rankings entered in this session (undone ones not counted).
    pub ranked_now: usize,
}

const HELP: &str = "\
Rank the responses from best to worst by typing their numbers, e.g. `3 1 4 2` (or `3142`).
A shorter list puts those first and keeps the rest in the order shown (`3` alone: 3 is best).
  s  skip this prompt          u  undo the last ranking or skip
  q  quit (resume later)       ?  this help
Each ranking is saved at once; rerun the same command to continue where you stopped.";

/// Index of the next sample to show: the first rankable one not yet dealt with (a prompt that
/// occurs n times in the samples is done after n rankings or skips), and how many are done.
fn next_pending(
    samples: &[SampleRecord],
    rankable: &[bool],
    done: &HashMap<&str, usize>,
) -> (Option<usize>, usize) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let (mut next, mut n_done) = (None, 0);
    for (i, s) in samples.iter().enumerate() {
        let occ = seen.entry(s.prompt.as_str()).or_default();
        *occ += 1;
        if !rankable[i] {
            continue;
        }
        if *occ <= done.get(s.prompt.as_str()).copied().unwrap_or(0) {
            n_done += 1;
        } else if next.is_none() {
            next = Some(i);
        }
    }
    (next, n_done)
}

fn indent(text: &str, pad: &str) -> String {
    text.lines().collect::<Vec<_>>().join(&format!("\n{pad}"))
}

fn show<W: Write>(
    ui: &mut W,
    pos: usize,
    total: usize,
    prompt: &str,
    resp: &[String],
) -> Result<()> {
    writeln!(
        ui,
        "\n[{pos}/{total}] Prompt: {}",
        indent(&display_prompt(prompt), "        ")
    )?;
    for (j, r) in resp.iter().enumerate() {
        writeln!(ui, "  {}. {}", j + 1, indent(r.trim(), "     "))?;
    }
    Ok(())
}

/// The samples as the session shows them: each prompt's distinct non-empty responses, and
/// whether there are at least 2 of them (only those prompts are shown).
struct Shown {
    responses: Vec<Vec<String>>,
    rankable: Vec<bool>,
    /// Rankable prompts.
    total: usize,
}

impl Shown {
    fn new(samples: &[SampleRecord]) -> Self {
        let responses: Vec<Vec<String>> = samples
            .iter()
            .map(|s| distinct_responses(&s.responses))
            .collect();
        let rankable: Vec<bool> = responses.iter().map(|r| r.len() >= 2).collect();
        let total = rankable.iter().filter(|&&r| r).count();
        Self {
            responses,
            rankable,
            total,
        }
    }
}

/// How the answers to one prompt ended.
enum Outcome {
    /// Ranked, skipped or undone: show the next pending prompt.
    Next,
    /// `q` or the end of the input: end the session.
    Stop,
}

/// Runs a labeling session over `samples`, reading answers from `input` and talking on `ui`;
/// rankings go to `out` (and `out.progress`). Returns when every prompt is done, on `q`, or at
/// the end of the input.
pub fn run_session<R: BufRead, W: Write>(
    samples: &[SampleRecord],
    out: &Path,
    mut input: R,
    mut ui: W,
) -> Result<HumanReport> {
    let mut store = Store::open(out)?;
    let shown = Shown::new(samples);
    greet(&mut ui, &store, samples, &shown, out)?;
    let mut ranked_now = 0usize;
    loop {
        let (next, n_done) = next_pending(samples, &shown.rankable, &store.done_counts());
        let Some(i) = next else {
            writeln!(ui, "\nall {} prompts are done.", shown.total)?;
            break;
        };
        let (prompt, responses) = (&samples[i].prompt, &shown.responses[i]);
        show(&mut ui, n_done + 1, shown.total, prompt, responses)?;
        let outcome = answer_prompt(
            &mut input,
            &mut ui,
            &mut store,
            prompt,
            responses,
            &mut ranked_now,
        )?;
        if let Outcome::Stop = outcome {
            break;
        }
    }
    finish(&mut ui, &store, samples, &shown, out, ranked_now)
}

/// The session's opening lines: the store's notes, a warning about prompts with more responses
/// than `rlhf rm` accepts, and how many prompts there are.
fn greet<W: Write>(
    ui: &mut W,
    store: &Store,
    samples: &[SampleRecord],
    shown: &Shown,
    out: &Path,
) -> Result<()> {
    for n in &store.notices {
        writeln!(ui, "note: {n}")?;
    }
    if shown.responses.iter().any(|r| r.len() > MAX_K) {
        writeln!(
            ui,
            "note: some prompts have more than {MAX_K} responses; `rlhf rm` accepts at most {MAX_K}"
        )?;
    }
    writeln!(
        ui,
        "{} prompts to rank into {} ({} done before); ? for help",
        shown.total,
        out.display(),
        next_pending(samples, &shown.rankable, &store.done_counts()).1
    )?;
    Ok(())
}

/// Reads answers for one prompt (its shown `responses`) until one ranks, skips or undoes, or the
/// session ends; invalid input and `?` are answered and asked again.
fn answer_prompt<R: BufRead, W: Write>(
    input: &mut R,
    ui: &mut W,
    store: &mut Store,
    prompt: &str,
    responses: &[String],
    ranked_now: &mut usize,
) -> Result<Outcome> {
    loop {
        write!(ui, "rank (best first), s skip, u undo, q quit, ? help> ")?;
        ui.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line).context("reading the terminal")? == 0 {
            writeln!(ui)?;
            return Ok(Outcome::Stop);
        }
        match parse_answer(&line, responses.len()) {
            Err(msg) => writeln!(ui, "  {msg}")?,
            Ok(Answer::Help) => writeln!(ui, "{HELP}")?,
            Ok(Answer::Quit) => return Ok(Outcome::Stop),
            Ok(Answer::Skip) => {
                store.add_skip(prompt)?;
                return Ok(Outcome::Next);
            }
            Ok(Answer::Undo) => {
                undo(ui, store, ranked_now)?;
                return Ok(Outcome::Next);
            }
            Ok(Answer::Rank(order)) => {
                store.add_ranking(Ranking {
                    prompt: prompt.to_string(),
                    responses: order.iter().map(|&j| responses[j].clone()).collect(),
                })?;
                *ranked_now += 1;
                return Ok(Outcome::Next);
            }
        }
    }
}

/// Undoes the last ranking or skip (`ranked_now` counts this session's rankings) and says which.
fn undo<W: Write>(ui: &mut W, store: &mut Store, ranked_now: &mut usize) -> Result<()> {
    match store.undo()? {
        None => writeln!(ui, "  nothing to undo")?,
        Some(e) => {
            if e.action == Action::Ranked {
                *ranked_now = ranked_now.saturating_sub(1);
            }
            let what = if e.action == Action::Ranked {
                "ranking"
            } else {
                "skip"
            };
            writeln!(ui, "  undone: the {what} of \"{}\"", short(&e.prompt))?;
        }
    }
    Ok(())
}

/// The session's totals, also written to `ui`.
fn finish<W: Write>(
    ui: &mut W,
    store: &Store,
    samples: &[SampleRecord],
    shown: &Shown,
    out: &Path,
    ranked_now: usize,
) -> Result<HumanReport> {
    let (_, n_done) = next_pending(samples, &shown.rankable, &store.done_counts());
    let report = HumanReport {
        prompts: samples.len(),
        unrankable: samples.len() - shown.total,
        ranked: store.ranked(),
        skipped: store.skipped(),
        remaining: shown.total - n_done,
        ranked_now,
    };
    writeln!(
        ui,
        "saved: {} ranked, {} skipped, {} to go -> {}",
        report.ranked,
        report.skipped,
        report.remaining,
        out.display()
    )?;
    ui.flush()?;
    Ok(report)
}

fn short(s: &str) -> String {
    let one_line = s.replace('\n', " ");
    match one_line.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_partial_compact_and_commands() {
        assert_eq!(
            parse_answer("3 1 4 2\n", 4),
            Ok(Answer::Rank(vec![2, 0, 3, 1]))
        );
        assert_eq!(parse_answer("3,1", 4), Ok(Answer::Rank(vec![2, 0, 1, 3])));
        assert_eq!(parse_answer("4213", 4), Ok(Answer::Rank(vec![3, 1, 0, 2])));
        assert_eq!(parse_answer(" S ", 4), Ok(Answer::Skip));
        assert_eq!(parse_answer("u", 4), Ok(Answer::Undo));
        assert_eq!(parse_answer("q", 4), Ok(Answer::Quit));
        assert_eq!(parse_answer("?", 4), Ok(Answer::Help));
        assert!(parse_answer("5 1", 4)
            .unwrap_err()
            .contains("no response 5"));
        assert!(parse_answer("1 1", 4).unwrap_err().contains("twice"));
        assert!(parse_answer("1 x", 4).unwrap_err().contains("'x'"));
        assert!(parse_answer("0", 4).is_err());
        assert!(parse_answer("", 4).is_err());
        // with K ≥ 10 numbers must be separated: "10" is response ten
        assert_eq!(
            parse_answer("10", 10).map(|a| matches!(a, Answer::Rank(ref o) if o[0] == 9)),
            Ok(true)
        );
    }

    #[test]
    fn session_over_in_memory_input() {
        let d = std::env::temp_dir().join(format!("rlhf-human-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let out = d.join("r.jsonl");
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(super::super::human_store::progress_path(&out));
        let s = |p: &str, r: &[&str]| SampleRecord {
            prompt: p.into(),
            responses: r.iter().map(|x| x.to_string()).collect(),
        };
        let samples = vec![
            s("p1", &["a", "b", "c"]),
            s("p2", &["x", "x"]), // unrankable
            s("p3", &["d", "e"]),
            s("p4", &["f", "g"]),
        ];
        let mut ui = Vec::new();
        let input = b"9\n2 3 1\ns\nu\n2\nq\n" as &[u8];
        let r = run_session(&samples, &out, input, &mut ui).unwrap();
        let text = String::from_utf8(ui).unwrap();
        assert!(text.contains("no response 9"), "{text}");
        assert_eq!(
            (r.ranked, r.skipped, r.remaining, r.unrankable),
            (2, 0, 1, 1)
        );
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            got,
            "{\"prompt\":\"p1\",\"responses\":[\"b\",\"c\",\"a\"]}\n\
             {\"prompt\":\"p3\",\"responses\":[\"e\",\"d\"]}\n"
        );
        // resume: p4 is next
        let mut ui = Vec::new();
        let r = run_session(&samples, &out, b"1 2\n" as &[u8], &mut ui).unwrap();
        let text = String::from_utf8(ui).unwrap();
        assert!(
            text.contains("[3/3] Prompt: p4") && text.contains("all 3 prompts are done"),
            "{text}"
        );
        assert_eq!((r.ranked, r.remaining, r.ranked_now), (3, 0, 1));
    }
}
