//! `rlhf label --labeler human` driven as a person would, through piped standard input: a ranking
//! is written, invalid input is refused with a message and then accepted, a session killed
//! mid-way resumes at the next prompt, and undo removes the last record.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SAMPLES: &str = "\
{\"prompt\":\"Define: Cat\",\"responses\":[\"A soft machine.\",\"A dog's enemy.\",\"A mystery.\"]}
{\"prompt\":\"Define: Dog\",\"responses\":[\"A friend.\",\"A cat's enemy.\",\"A noise.\"]}
{\"prompt\":\"Define: Owl\",\"responses\":[\"A wise bird.\",\"A night.\"]}
";

fn setup(name: &str) -> (PathBuf, PathBuf) {
    let d = common::tmp_dir(name);
    let s = d.join("samples.jsonl");
    std::fs::write(&s, SAMPLES).unwrap();
    (s, d.join("rankings.jsonl"))
}

fn label(samples: &Path, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rlhf"));
    c.args(["label", "--labeler", "human", "--samples"])
        .arg(samples)
        .arg("--out")
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs a whole session with `input` on standard input.
fn session(samples: &Path, out: &Path, input: &str) -> Output {
    let mut child = label(samples, out).spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn records(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_ranking_is_written_in_the_rankings_format() {
    let (s, out) = setup("human-write");
    let o = session(&s, &out, "3 1 2\nq\n");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("[1/3] Prompt: Define: Cat"), "{text}");
    assert!(text.contains("  3. A mystery."), "{text}");
    let (r, _) = rlhf::data::rankings::read_rankings(&out, false).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].prompt, "Define: Cat");
    assert_eq!(
        r[0].responses,
        vec!["A mystery.", "A soft machine.", "A dog's enemy."]
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("1 of 3 prompts ranked"), "{err}");
}

#[test]
fn invalid_input_is_refused_with_a_message_then_accepted() {
    let (s, out) = setup("human-invalid");
    let o = session(&s, &out, "4 1\n1 1\nbest\n\n2 1 3\nq\n");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("there is no response 4: the numbers go from 1 to 3"),
        "{text}"
    );
    assert!(text.contains("response 1 is listed twice"), "{text}");
    assert!(text.contains("'best' is not a response number"), "{text}");
    assert!(
        text.contains("type the response numbers, best first"),
        "{text}"
    );
    // the prompt stayed on screen through the errors: it was shown once
    assert_eq!(text.matches("Prompt: Define: Cat").count(), 1, "{text}");
    let r = records(&out);
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0]["responses"],
        serde_json::json!(["A dog's enemy.", "A soft machine.", "A mystery."])
    );
}

#[test]
fn a_killed_session_resumes_at_the_next_prompt() {
    let (s, out) = setup("human-kill");
    let mut child = label(&s, &out).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"2 3 1\n").unwrap();
    stdin.flush().unwrap();
    // wait until the first ranking is on disk, then kill the labeler (stdin still open)
    let t0 = Instant::now();
    while records(&out).is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(30), "no ranking written");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert_eq!(records(&out).len(), 1);
    // a skip is remembered too
    let o = session(&s, &out, "s\n");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("(1 done before)"), "{text}");
    assert!(!text.contains("Prompt: Define: Cat"), "{text}");
    assert!(text.contains("[2/3] Prompt: Define: Dog"), "{text}");
    let o = session(&s, &out, "2 1\n");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        !text.contains("Define: Dog") && text.contains("[3/3] Prompt: Define: Owl"),
        "{text}"
    );
    assert!(text.contains("all 3 prompts are done"), "{text}");
    let prompts: Vec<String> = records(&out)
        .iter()
        .map(|r| r["prompt"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(prompts, vec!["Define: Cat", "Define: Owl"]);
}

#[test]
fn undo_removes_the_last_record_even_after_a_restart() {
    let (s, out) = setup("human-undo");
    session(&s, &out, "1 2 3\n3 2 1\n");
    assert_eq!(records(&out).len(), 2);
    // a new session: undo the Dog ranking, which is shown again and ranked differently
    let o = session(&s, &out, "u\n1 2 3\nq\n");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("undone: the ranking of \"Define: Dog\""),
        "{text}"
    );
    let r = records(&out);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["prompt"], "Define: Cat");
    assert_eq!(
        r[1]["responses"],
        serde_json::json!(["A friend.", "A cat's enemy.", "A noise."])
    );
    // undo twice: both records gone, the file is still valid (empty)
    session(&s, &out, "u\nu\nq\n");
    assert!(records(&out).is_empty());
    session(&s, &out, "u\nq\n"); // nothing to undo is fine
}

#[test]
fn windows_console_line_ends_give_the_same_session() {
    // a Windows console (and a file piped from a Windows editor) ends each line with `\r\n`
    let input = "3 1 2\ns\n2 1\n";
    let (s, lf) = setup("human-lf");
    session(&s, &lf, input);
    let (s, crlf) = setup("human-crlf");
    let o = session(&s, &crlf, &input.replace('\n', "\r\n"));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(!text.contains("not a response number"), "{text}");
    assert_eq!(records(&crlf), records(&lf));
    assert_eq!(records(&crlf).len(), 2);
    let progress = |out: &Path| {
        std::fs::read_to_string(rlhf::labeler::human_store::progress_path(out)).unwrap()
    };
    assert_eq!(progress(&crlf), progress(&lf));
}
