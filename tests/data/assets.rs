//! The bundled prompts, demonstrations and corpus carry no slurs: every such file is checked
//! against `assets/screen/blocklist.txt`, matched as its header describes (whole words, any case,
//! plain plurals, hyphenated compounds also unhyphenated), the way `assets/build_assets.py`
//! matches when it drops records.

use crate::common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Text files under `assets/` that are not screened, each with the reason:
const EXCLUDED: &[(&str, &str)] = &[
    (
        "vader/vader_lexicon.txt",
        "a sentiment lexicon rates offensive words too, so it must list them; the labeler scores \
         text with it and never shows it",
    ),
    (
        "gpt2/merges.txt",
        "GPT-2's BPE merges: tokenizer tables (like gpt2/vocab.json), not text shown to users",
    ),
    (
        "screen/blocklist.txt",
        "the list itself, which names what it screens",
    ),
];

/// The screened files: every `.jsonl` and `.txt` under `assets/` (the prompt and demonstration
/// files, the dictionary, the Austen corpus, license texts) less [`EXCLUDED`]. Other files are no
/// text a model reads or a user is shown as data: `.md` documentation (assets/README.md names what
/// was removed), `.toml` presets, the `.json` BPE vocabulary, the `.ttf` font.
fn screened_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl" || x == "txt")
                && !EXCLUDED.iter().any(|(x, _)| *x == rel(root, &p))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `path` relative to `root`, with forward slashes (as [`EXCLUDED`] names files).
fn rel(root: &Path, path: &Path) -> String {
    let r = path.strip_prefix(root).unwrap_or(path);
    r.to_string_lossy().replace('\\', "/")
}

/// Every form the list flags, lower case: each word, and its plurals +s, +es and y to ies.
fn blocklist(text: &str) -> HashSet<String> {
    let mut forms = HashSet::new();
    for w in text.lines().map(str::trim) {
        if w.is_empty() || w.starts_with('#') {
            continue;
        }
        forms.extend([w.to_string(), format!("{w}s"), format!("{w}es")]);
        if let Some(stem) = w.strip_suffix('y') {
            forms.insert(format!("{stem}ies"));
        }
    }
    forms
}

fn load_blocklist() -> HashSet<String> {
    let p = common::assets().join("screen/blocklist.txt");
    let forms = blocklist(&std::fs::read_to_string(&p).unwrap());
    assert!(
        forms.len() > 100,
        "{}: only {} forms",
        p.display(),
        forms.len()
    );
    forms
}

/// The words of `text` that `forms` flags: every run of letters, and every compound of runs
/// joined by single hyphens with its hyphens taken out.
fn flagged(text: &str, forms: &HashSet<String>) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut parts: Vec<String> = Vec::new(); // the runs of the compound being read
    let mut run = String::new();
    let mut check = |parts: &mut Vec<String>| {
        let mut words = parts.clone();
        if parts.len() > 1 {
            words.push(parts.concat());
        }
        out.extend(
            words
                .into_iter()
                .filter(|w| forms.contains(&w.to_lowercase())),
        );
        parts.clear();
    };
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphabetic() {
            run.push(c);
            continue;
        }
        if !run.is_empty() {
            parts.push(std::mem::take(&mut run));
        }
        let joins = c == '-'
            && i > 0
            && chars[i - 1].is_alphabetic()
            && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
        if !joins {
            check(&mut parts);
        }
    }
    if !run.is_empty() {
        parts.push(run);
    }
    check(&mut parts);
    out
}

/// The text of one line of a file: a JSONL record's string values (its keys are the format's,
/// never shown), a text file's line as it is.
fn line_texts(path: &Path, line: &str) -> Result<Vec<String>, String> {
    fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    if path.extension().is_some_and(|x| x == "jsonl") && !line.trim().is_empty() {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        strings(&v, &mut out);
        Ok(out)
    } else {
        Ok(vec![line.to_string()])
    }
}

/// `file:line: words` for every line of `path` that the screen flags.
fn hits(path: &Path, forms: &HashSet<String>) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let words: Vec<String> = match line_texts(path, line) {
            Ok(t) => t.iter().flat_map(|s| flagged(s, forms)).collect(),
            Err(e) => vec![format!("not JSON ({e})")],
        };
        if !words.is_empty() {
            out.push(format!(
                "{}:{}: {}",
                path.display(),
                i + 1,
                words.join(", ")
            ));
        }
    }
    out
}

#[test]
fn bundled_text_has_no_slurs() {
    let forms = load_blocklist();
    let root = common::assets();
    for (path, _) in EXCLUDED {
        assert!(
            root.join(path).is_file(),
            "excluded {path} is gone: drop it from EXCLUDED"
        );
    }
    let files = screened_files(&root);
    let names: Vec<String> = files.iter().map(|p| rel(&root, p)).collect();
    for want in [
        "sft.jsonl",
        "prompts.jsonl",
        "eval_prompts.jsonl",
        "devils_dictionary.jsonl",
        "austen/emma.txt",
        "austen/persuasion.txt",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} not screened: {names:?}"
        );
    }
    assert_eq!(names.iter().filter(|n| n.starts_with("austen/")).count(), 6);
    let found: Vec<String> = files.iter().flat_map(|p| hits(p, &forms)).collect();
    assert!(
        found.is_empty(),
        "bundled text matches assets/screen/blocklist.txt (drop the records, or rebuild with \
         assets/build_assets.py):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_screen_flags_slurs_and_passes_ordinary_words() {
    let forms = load_blocklist();
    let flags = |s: &str| flagged(s, &forms);
    assert_eq!(flags("Define: Negro"), ["Negro"]);
    assert_eq!(flags("NEGROES"), ["NEGROES"]);
    assert_eq!(flags("The young of the _Pickaninnies_."), ["Pickaninnies"]);
    assert_eq!(flags("the nigger's"), ["nigger"]);
    assert_eq!(flags("Define: Red-Skin"), ["RedSkin"]);
    assert_eq!(flags("honest Injun: William"), ["Injun"]);
    // ordinary words of the corpus, and words that only contain a listed one
    for ok in [
        "a niggardly allowance; a niggard",
        "a bundle of faggots; such a fag",
        "a queer fancy; a gipsy party; a Moor Park apricot",
        "a Negroni",
        "Japan and the Japanese",
        "a tycoon and a raccoon",
        "spick and span",
        "rich as a Jew",
        "Red -- at least",
        "Define: Whangdepootenawah",
    ] {
        assert!(flags(ok).is_empty(), "{ok:?} flagged: {:?}", flags(ok));
    }
    // a hit names file and line, whatever the record's shape
    let d = common::tmp_dir("screen");
    let p = d.join("prompts.jsonl");
    std::fs::write(
        &p,
        "{\"prompt\": \"Define: Cat\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \
         \"Define:\\nNegro\"}]}\n",
    )
    .unwrap();
    assert_eq!(hits(&p, &forms), [format!("{}:2: Negro", p.display())]);
    std::fs::remove_dir_all(&d).unwrap();
}
