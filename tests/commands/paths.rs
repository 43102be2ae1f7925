//! Every file argument of every command under a directory whose name has spaces and non-ASCII
//! characters (as `C:\Users\José\My Documents` or `~/Library/Mobile Documents` do), on a tiny
//! job run as a user would: tokenizer → pretrain → SFT → sample → label → RM → score → PPO →
//! DPO → best-of-n → eval → report, the Hugging Face export and import, chat, the human labeler,
//! the kernels' dump and the whole pipeline on a copy of the assets. (`devices`, `doctor` and
//! `bench` take no file arguments.)

use crate::common;

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs `rlhf args...` with `stdin` as its input; fails the test unless it succeeds.
fn rlhf(stdin: &str, args: &[&OsStr]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "rlhf {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// `run!(stdin; arg, ...)`: [`rlhf`] with arguments of any string or path type.
macro_rules! run {
    ($stdin:expr; $($a:expr),* $(,)?) => {
        rlhf($stdin, &[$(OsStr::new(&$a)),*])
    };
}

/// The first `n` lines of an asset, written to `to`.
fn head(asset: &str, n: usize, to: &Path) {
    let text = std::fs::read_to_string(common::assets().join(asset)).unwrap();
    let lines: Vec<&str> = text.lines().take(n).collect();
    std::fs::write(to, lines.join("\n") + "\n").unwrap();
}

/// The inputs of the job, all under `root`.
struct Inputs {
    corpus: PathBuf,
    preset: PathBuf,
    sft: PathBuf,
    prompts: PathBuf,
    lexicon: PathBuf,
}

fn inputs(root: &Path) -> Inputs {
    let i = Inputs {
        corpus: root.join("the corpus é.txt"),
        preset: root.join("tiny preset.toml"),
        sft: root.join("démos sft.jsonl"),
        prompts: root.join("prompts ü.jsonl"),
        lexicon: root.join("vader lexicon.txt"),
    };
    let text = std::fs::read_to_string(common::assets().join("austen/emma.txt")).unwrap();
    std::fs::write(&i.corpus, text.chars().take(60_000).collect::<String>()).unwrap();
    std::fs::copy(common::assets().join("presets/tiny.toml"), &i.preset).unwrap();
    head("sft.jsonl", 40, &i.sft);
    head("prompts.jsonl", 12, &i.prompts);
    std::fs::copy(common::assets().join("vader/vader_lexicon.txt"), &i.lexicon).unwrap();
    i
}

#[test]
fn every_file_argument_takes_spaces_and_non_ascii() {
    let root = common::tmp_dir("paths")
        .join("dir with spaces")
        .join("é ü 名");
    std::fs::create_dir_all(&root).unwrap();
    let i = inputs(&root);
    let o = |name: &str| root.join(name);
    let (tok, pre, sft) = (o("tök en.json"), o("pre train"), o("s f t"));
    let (samples, rankings, rm) = (o("sam ples.jsonl"), o("rank ings.jsonl"), o("r m"));
    let (cpu, steps) = ("--device=cpu", "--steps=2");
    let (batch, every) = ("--batch-size=2", "--eval-every=2");
    run!(""; "tokenizer", "train", "--corpus", i.corpus, "--vocab-size", "300", "--out", tok);
    run!(""; "pretrain", "--corpus", i.corpus, "--tokenizer", tok, "--preset", i.preset,
        "--out", pre, cpu, steps, batch, every);
    run!(""; "sft", "--init", pre, "--data", i.sft, "--out", sft, cpu, steps, batch, every);
    run!(""; "sample", "--ckpt", sft, "--prompts", i.prompts, "-k", "4", "--max-new-tokens", "6",
        "--out", samples, cpu);
    run!(""; "label", "--samples", samples, "--out", rankings, "--lexicon", i.lexicon,
        "--keep-ties");
    run!(""; "rm", "--init", sft, "--data", rankings, "--norm-samples", samples, "--out", rm, cpu,
        steps, every);
    run!(""; "score", "--rm", rm, "--data", samples, "--out", o("scö res.jsonl"), cpu);
    let ppo = o("p p o");
    run!(""; "ppo", "--policy", sft, "--rm", rm, "--prompts", i.prompts, "--ptx-corpus", i.corpus,
        "--out", ppo, "--steps", "1", "--rollout-batch", "2", "--minibatch", "2",
        "--max-new-tokens", "4", cpu);
    run!(""; "dpo", "--init", sft, "--reference", sft, "--data", rankings, "--out", o("d p ö"),
        cpu, steps, "--batch-size=2", every);
    run!(""; "bon", "--policy", sft, "--rm", rm, "--prompts", i.prompts, "--lexicon", i.lexicon,
        "--n-max", "2", "--n", "2", "--max-new-tokens", "4", "--out", o("b ö n"), cpu);
    run!(""; "kernels", "--dump", o("kér nels"));
    run!(""; "eval", "--policy", ppo, "--baseline", sft, "--prompts", i.prompts,
        "--lexicon", i.lexicon, "--rm", rm, "--pretrained", pre, "--heldout-text", i.corpus,
        "--ppl-windows", "2", "--n", "2", "--max-new-tokens", "4", "--out", o("e val"), cpu);
    run!(""; "report", "--run", root);
    let hf = o("h f");
    run!(""; "export-hf", "--ckpt", sft, "--out", hf);
    run!(""; "import-hf", "--dir", hf, "--out", o("im port"));
    let chat = run!("Define: Cat\n\n"; "chat", "--ckpt", sft, "--max-new-tokens", "4", cpu);
    assert!(!chat.stdout.is_empty());
    run!("1 2\nq\n"; "label", "--labeler", "human", "--samples", samples,
        "--out", o("hü man.jsonl"));
    let assets = o("as sets é");
    crate::fixtures::copy_dir(&common::assets(), &assets);
    let pipe = o("pipe line ü");
    let mut args = vec![
        OsStr::new("pipeline"),
        OsStr::new("--preset=tiny"),
        OsStr::new(cpu),
    ];
    args.extend([
        OsStr::new("--assets"),
        assets.as_os_str(),
        OsStr::new("--out"),
        pipe.as_os_str(),
    ]);
    args.extend(crate::fixtures::SHORT_PIPELINE.map(OsStr::new));
    rlhf("", &args);
    for f in [
        "tök en.json",
        "pre train/ckpt/model.safetensors",
        "s f t/ckpt/model.safetensors",
        "sam ples.jsonl",
        "rank ings.jsonl",
        "r m/ckpt/model.safetensors",
        "scö res.jsonl",
        "p p o/ckpt/value/model.safetensors",
        "e val/eval.json",
        "report.md",
        "h f/model.safetensors",
        "im port/model.safetensors",
        "hü man.jsonl",
        "d p ö/ckpt/model.safetensors",
        "b ö n/bon.json",
        "pipe line ü/report.md",
    ] {
        assert!(root.join(f).is_file(), "missing {f}");
    }
    let dumped = std::fs::read_dir(o("kér nels")).unwrap().count();
    assert!(dumped > 0, "kernels --dump wrote nothing");
    let (r, _) = rlhf::data::rankings::read_rankings(&o("hü man.jsonl"), false).unwrap();
    assert_eq!(r.len(), 1);
}
