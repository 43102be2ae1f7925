//! What Windows and macOS do differently, checked here on Linux: files saved by Windows editors
//! (`\r\n` line ends, a byte-order mark) read as the same records and text as their `\n` twins in
//! every reader; a file is flushed with the handle each system needs; directory renames never go
//! over an existing directory; paths with spaces and non-ASCII characters work.

use crate::common;

use rlhf::data::formats::{read_prompts, read_samples, read_sft, read_text};
use rlhf::data::rankings::read_rankings;
use rlhf::labeler::human_store::{progress_path, Store};
use rlhf::util::fs::{commit, flush_file, flush_file_on, sync_dir_on, write_atomic, Os};
use std::path::{Path, PathBuf};

/// `text` as a Windows editor saves it: every `\n` a `\r\n`.
fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

/// Writes `text` three ways under `dir`: as is, with `\r\n` line ends, and with `\r\n` plus a
/// UTF-8 byte-order mark. Returns the three paths.
fn three_ways(dir: &Path, name: &str, text: &str) -> [PathBuf; 3] {
    let paths = [
        dir.join(format!("lf-{name}")),
        dir.join(format!("crlf-{name}")),
        dir.join(format!("bom-{name}")),
    ];
    std::fs::write(&paths[0], text).unwrap();
    std::fs::write(&paths[1], crlf(text)).unwrap();
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(crlf(text).as_bytes());
    std::fs::write(&paths[2], bom).unwrap();
    paths
}

/// Reads the three files with `read` and checks they give the same, non-empty, result.
fn same_records<T: PartialEq + std::fmt::Debug>(paths: &[PathBuf; 3], read: impl Fn(&Path) -> T) {
    let want = read(&paths[0]);
    assert!(format!("{want:?}").len() > 10, "{want:?}");
    for p in &paths[1..] {
        assert_eq!(read(p), want, "{} reads differently", p.display());
    }
}

// blank lines in the middle and at the end: in a `\r\n` file they are `\r` alone
const SFT: &str = "{\"prompt\":\"Define: Cat\",\"response\":\"A soft machine.\"}\n\n\
{\"instruction\":\"Say\",\"input\":\"hi\",\"output\":\"hello\\r\\nthere\"}\n\n";
const SAMPLES: &str =
    "{\"prompt\":\"Define: Cat\",\"responses\":[\"A soft machine.\",\"A dog.\"]}\n\
\n{\"prompt\":\"Define: Owl\",\"responses\":[\"A wise bird.\",\"A night.\",\"A hoot.\"]}\n";
const RANKINGS: &str =
    "{\"prompt\":\"Define: Cat\",\"responses\":[\"A soft machine.\",\"A dog.\"]}\n\
{\"prompt\":\"p\",\"chosen\":\"yes\",\"rejected\":\"no\"}\n\n\
{\"chosen\":\"\\n\\nHuman: hi\\n\\nAssistant: hello\",\
\"rejected\":\"\\n\\nHuman: hi\\n\\nAssistant: go\"}\n";

#[test]
fn windows_line_ends_read_as_the_same_jsonl_records() {
    let d = common::tmp_dir("crlf-jsonl");
    same_records(&three_ways(&d, "sft.jsonl", SFT), |p| read_sft(p).unwrap());
    same_records(&three_ways(&d, "prompts.jsonl", SAMPLES), |p| {
        read_prompts(p).unwrap()
    });
    same_records(&three_ways(&d, "samples.jsonl", SAMPLES), |p| {
        read_samples(p).unwrap()
    });
    same_records(&three_ways(&d, "rankings.jsonl", RANKINGS), |p| {
        let (r, report) = read_rankings(p, false).unwrap();
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        r
    });
    // a `\r\n` inside a JSON string is the record's own text, kept
    assert_eq!(
        read_sft(&d.join("crlf-sft.jsonl")).unwrap()[1].response(),
        "hello\r\nthere"
    );
}

const HUMAN_RANKINGS: &str =
    "{\"prompt\":\"Define: Cat\",\"responses\":[\"A soft machine.\",\"A dog.\"]}\n\
{\"prompt\":\"p\",\"responses\":[\"yes\",\"no\"]}\n";

#[test]
fn windows_line_ends_read_as_the_same_human_labeling_session() {
    let d = common::tmp_dir("crlf-human");
    let progress = "{\"action\":\"ranked\",\"prompt\":\"Define: Cat\"}\n\
                    {\"action\":\"skipped\",\"prompt\":\"q\"}\n\
                    {\"action\":\"ranked\",\"prompt\":\"p\"}\n";
    let outs = three_ways(&d, "rankings.jsonl", HUMAN_RANKINGS);
    let logs = three_ways(&d, "progress", progress);
    for (out, log) in outs.iter().zip(&logs) {
        std::fs::rename(log, progress_path(out)).unwrap();
    }
    same_records(&outs, |out| {
        let s = Store::open(out).unwrap();
        // nothing to repair: the `\r`s are not a damaged file
        assert!(s.notices.is_empty(), "{}: {:?}", out.display(), s.notices);
        let mut done: Vec<(String, usize)> = s
            .done_counts()
            .into_iter()
            .map(|(p, n)| (p.to_string(), n))
            .collect();
        done.sort();
        (s.ranked(), s.skipped(), done)
    });
}

#[test]
fn utf16_files_are_refused_with_a_reason() {
    let d = common::tmp_dir("utf16");
    let p = d.join("prompts.jsonl");
    let mut bytes = vec![0xFF, 0xFE];
    for u in "{\"prompt\":\"a\"}\r\n".encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    std::fs::write(&p, &bytes).unwrap();
    let e = format!("{:#}", read_prompts(&p).unwrap_err());
    assert!(e.contains("UTF-16") && e.contains("prompts.jsonl"), "{e}");
    let e = format!("{:#}", read_text(&p).unwrap_err());
    assert!(e.contains("UTF-16"), "{e}");
}

#[test]
fn windows_line_ends_read_as_the_same_corpus_and_tokenizer() {
    let d = common::tmp_dir("crlf-corpus");
    let text = std::fs::read_to_string(common::assets().join("austen/emma.txt")).unwrap();
    let text: String = text.chars().take(60_000).collect();
    assert!(text.contains("\n\n"));
    let paths = three_ways(&d, "corpus.txt", &text);
    same_records(&paths, |p| read_text(p).unwrap());
    assert_eq!(read_text(&paths[1]).unwrap(), text);
    // the tokenizer trainer reads the corpus the same way: the same merges, byte for byte
    same_records(&paths, |p| {
        let tok = rlhf::data::tokenizer::train(&[p.to_path_buf()], 300).unwrap();
        let out = d.join("tok.json");
        tok.save(&out).unwrap();
        std::fs::read_to_string(&out).unwrap()
    });
}

#[test]
fn files_are_flushed_with_the_handle_each_system_needs() {
    let d = common::tmp_dir("flush");
    let normal = d.join("model.safetensors");
    std::fs::write(&normal, b"weights").unwrap();
    let read_only = d.join("read-only.json");
    std::fs::write(&read_only, b"{}").unwrap();
    let mut perm = std::fs::metadata(&read_only).unwrap().permissions();
    perm.set_readonly(true);
    std::fs::set_permissions(&read_only, perm).unwrap();
    flush_file(&normal).unwrap();
    // the Unix rule opens read-only, which works on a file nobody may write (Windows' rule opens
    // for writing, which FlushFileBuffers needs; as root here that would succeed either way)
    flush_file(&read_only).unwrap();
    flush_file_on(Os::Unix, &read_only).unwrap();
    flush_file_on(Os::Windows, &normal).unwrap();
    let e = format!("{:#}", flush_file(&d.join("gone")).unwrap_err());
    assert!(e.contains("flushing") && e.contains("gone"), "{e}");
    // directories: flushed on Unix (a missing one is an error), left to NTFS on Windows
    sync_dir_on(Os::Unix, &d).unwrap();
    assert!(sync_dir_on(Os::Unix, &d.join("gone")).is_err());
    sync_dir_on(Os::Windows, &d.join("gone")).unwrap();
}

#[test]
fn renames_replace_files_and_directories_under_awkward_names() {
    let d = common::tmp_dir("rename")
        .join("dir with spaces")
        .join("é ü 名");
    std::fs::create_dir_all(&d).unwrap();
    let f = d.join("report file.md");
    write_atomic(&f, b"one").unwrap();
    write_atomic(&f, b"two").unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"two");
    // a directory replaced by another (Windows cannot rename over an existing directory)
    let (tmp, dest) = (d.join("new dir.tmp"), d.join("new dir"));
    for (dir, file) in [(&dest, "old.json"), (&tmp, "new.json")] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), b"{}").unwrap();
    }
    commit(&tmp, &dest).unwrap();
    assert!(dest.join("new.json").is_file() && !dest.join("old.json").exists());
    assert!(!tmp.exists());
}
