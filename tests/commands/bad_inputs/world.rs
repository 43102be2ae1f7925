//! What the bad-input cases run against, made once per test binary: a good tiny checkpoint, its
//! inputs, checkpoints broken on purpose (`ck/`), checkpoints to resume from with one file
//! damaged, a second tokenizer of the same size, an existing regular file, a read-only directory.

use crate::common;
use crate::fixtures;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub struct World {
    /// Scratch; `{dir}` in the cases.
    pub dir: PathBuf,
    /// A tiny pretrained stage directory (2 steps, finished), `{ckpt}`.
    pub ckpt: PathBuf,
    /// The broken checkpoints, `{ck}`.
    pub ck: PathBuf,
    pub tok: PathBuf,
    /// A tokenizer of the same size (512) as `tok`, trained on another novel, `{tok2}`.
    pub tok2: PathBuf,
    pub corpus: PathBuf,
    /// 60 good rankings, `{rank}`.
    pub rank: PathBuf,
    /// An existing regular file, `{file}`: an `--out` that is a file, or lies under one.
    pub file: PathBuf,
    /// A directory this user cannot write in, `{ro}`; None where permissions are not enforced
    /// (root), where the cases that use it are skipped with a note.
    pub ro: Option<PathBuf>,
    /// The stage directories the cases resume from (refused), with their files as made: a
    /// refused resume must leave them as they were.
    pub resumes: Vec<(PathBuf, Files)>,
}

/// Every file under a directory, by relative path, with its bytes.
pub type Files = BTreeMap<PathBuf, Vec<u8>>;

pub fn files(dir: &Path) -> Files {
    let mut out = Files::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(make)
}

fn make() -> World {
    let d = common::tmp_dir("bad-inputs");
    let inp = fixtures::inputs(&d.join("in"), &common::tok());
    let good = d.join("good");
    fixtures::tiny_pretrain(&inp, &good, 2);
    let ck = d.join("ck");
    let tok2 = d.join("tok2.json");
    other_tokenizer(512, "persuasion.txt", 100_000)
        .save(&tok2)
        .unwrap();
    broken_checkpoints(&good.join("ckpt"), &ck, &tok2);
    let resumes = damaged_resumes(&good.join("ckpt"), &ck);
    let file = d.join("a_file");
    std::fs::write(&file, "not a directory").unwrap();
    std::fs::write(d.join("p.jsonl"), "{\"prompt\":\"Define: Cat\"}\n").unwrap();
    World {
        dir: d.clone(),
        ckpt: good,
        ck,
        tok: inp.tok,
        tok2,
        corpus: inp.corpus,
        rank: inp.rankings,
        file,
        ro: read_only_dir(&d.join("read_only")),
        resumes,
    }
}

/// A directory with its write permission taken away, or None (and the directory writable again)
/// when a file can still be made in it: root, or CAP_DAC_OVERRIDE, ignores the permission.
#[cfg(unix)]
fn read_only_dir(p: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(p).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(p.join("probe"), "").is_ok() {
        std::fs::remove_file(p.join("probe")).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        return None;
    }
    Some(p.to_path_buf())
}

#[cfg(not(unix))]
fn read_only_dir(_: &Path) -> Option<PathBuf> {
    None
}

/// A BPE of `size` tokens trained on the first `chars` characters of a bundled novel.
fn other_tokenizer(size: usize, novel: &str, chars: usize) -> rlhf::data::tokenizer::Tok {
    let text = std::fs::read_to_string(common::assets().join("austen").join(novel)).unwrap();
    let d = common::tmp_dir(&format!("tok-{size}-{novel}"));
    let f = d.join("corpus.txt");
    std::fs::write(&f, text.chars().take(chars).collect::<String>()).unwrap();
    let t = rlhf::data::tokenizer::train(std::slice::from_ref(&f), size).unwrap();
    assert_eq!(t.vocab_size(), size);
    std::fs::remove_dir_all(d).unwrap();
    t
}

/// Copies of the good checkpoint with one thing wrong, each in `ck/<name>/`.
fn broken_checkpoints(good: &Path, ck: &Path, tok2: &Path) {
    let make = |name: &str, f: &dyn Fn(&Path)| {
        let p = ck.join(name);
        fixtures::copy_dir(good, &p);
        f(&p);
    };
    let edit_config = |p: &Path, from: &str, to: &str| {
        let c = std::fs::read_to_string(p.join("config.json")).unwrap();
        assert!(c.contains(from), "{c}");
        std::fs::write(p.join("config.json"), c.replace(from, to)).unwrap();
    };
    make("garbage", &|p| {
        std::fs::write(p.join("model.safetensors"), "not a safetensors file").unwrap()
    });
    make("truncated", &|p| truncate(&p.join("model.safetensors")));
    make("deeper", &|p| {
        edit_config(p, "\"n_layer\": 2", "\"n_layer\": 3")
    });
    make("shorter_ctx", &|p| {
        edit_config(p, "\"n_ctx\": 64", "\"n_ctx\": 32")
    });
    make("bad_config", &|p| {
        std::fs::write(p.join("config.json"), "{\"kind\": \"lm\",").unwrap()
    });
    make("nan", &|p| {
        // overwrite the first value of wte.weight with a NaN, in place
        let f = p.join("model.safetensors");
        let mut b = std::fs::read(&f).unwrap();
        let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
        let off = header["wte.weight"]["data_offsets"][0].as_u64().unwrap() as usize;
        b[8 + n + off..8 + n + off + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        std::fs::write(&f, b).unwrap();
    });
    make("other_tokenizer", &|p| {
        other_tokenizer(300, "emma.txt", 50_000)
            .save(&p.join("tokenizer.json"))
            .unwrap();
    });
    // loads (the sizes match) but reads other tokens than the checkpoint it would resume
    make("same_size_tokenizer", &|p| {
        std::fs::copy(tok2, p.join("tokenizer.json")).unwrap();
    });
}

/// Keeps the first half of a file.
fn truncate(f: &Path) {
    let b = std::fs::read(f).unwrap();
    std::fs::write(f, &b[..b.len() / 2]).unwrap();
}

/// What is done to a copy of a checkpoint (its directory).
type Damage = fn(&Path);

/// Stage directories holding the good checkpoint in `ckpt/` for the `--resume` cases, with their
/// files: `ck/resume_dir` and `ck/sft_resume_dir` intact (those cases change the run instead),
/// `ck/resume_<what>` with one file damaged.
fn damaged_resumes(good: &Path, ck: &Path) -> Vec<(PathBuf, Files)> {
    let cases: [(&str, Damage); 7] = [
        ("resume_dir", |_| {}),
        ("sft_resume_dir", |_| {}),
        ("resume_optimizer", |p| {
            std::fs::write(p.join("optimizer.bpk"), "not a burnpack record").unwrap()
        }),
        ("resume_optimizer_truncated", |p| {
            truncate(&p.join("optimizer.bpk"))
        }),
        ("resume_state", |p| truncate(&p.join("train_state.json"))),
        ("resume_ids", |p| truncate(&p.join("param_ids.json"))),
        ("resume_ids_short", |p| {
            std::fs::write(p.join("param_ids.json"), "[1, 2]").unwrap()
        }),
    ];
    cases
        .iter()
        .map(|(name, damage)| {
            let out = ck.join(name);
            fixtures::copy_dir(good, &out.join("ckpt"));
            damage(&out.join("ckpt"));
            (out.clone(), files(&out))
        })
        .collect()
}

/// The command of a case, its placeholders replaced (see `Case`).
pub fn expand(cmd: &str, w: &World, file: &str, out: &Path) -> Vec<String> {
    let bad = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bad_inputs")
        .join(file);
    let ro = w.ro.clone().unwrap_or_default();
    let s = fixtures::s;
    cmd.split_whitespace()
        .map(|a| {
            a.replace("{bad}", s(&bad))
                .replace("{ckpt}", s(&w.ckpt))
                .replace("{ck}", s(&w.ck))
                .replace("{tok2}", s(&w.tok2))
                .replace("{tok}", s(&w.tok))
                .replace("{corpus}", s(&w.corpus))
                .replace("{rank}", s(&w.rank))
                .replace("{file}", s(&w.file))
                .replace("{ro}", s(&ro))
                .replace("{dir}", s(&w.dir))
                .replace("{out}", s(out))
        })
        .collect()
}
