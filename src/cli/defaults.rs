//! The `[default: X]` that `--help` shows for the flags whose default is a stage's setting, read
//! from the stage's config, so each default is written once, in the config: `TrainConfig::
//! pretrain()`, `sft()` and `rm()`, `DpoConfig::default()`, `PpoConfig::default()` and
//! `PipelineConfig::for_preset`. A flag of `pretrain`, `sft`, `rm`, `dpo` or `ppo` shows the
//! setting of its own name (as the flag sets it); `pipeline`'s flags name theirs in [`PIPELINE`]
//! and show the default preset's value, then the presets whose value differs
//! (`[default: 500; tiny 120, base 600, gpt2 600]`). The values are the configs' serialised ones
//! (`none` for an unset option); flags with a clap default show clap's.

use crate::config::{preset_names, TrainConfig};
use crate::pipeline::{BaseSize, PipelineConfig};
use crate::stages::dpo::DpoConfig;
use crate::stages::ppo::PpoConfig;
use clap::{Arg, Command};
use serde::Serialize;
use serde_json::{Map, Value};

/// `rlhf pipeline`'s flags whose default is a setting of the job, and where that setting sits in
/// `PipelineConfig` (a JSON pointer into `pipeline.json`).
const PIPELINE: &[(&str, &str)] = &[
    ("k", "/k"),
    ("rounds", "/rounds"),
    ("labeler", "/labeler"),
    ("labeler_noise", "/labeler_noise"),
    ("ptx_coef", "/ppo/ptx_coef"),
    ("kl_coef", "/ppo/kl_coef"),
    ("ppo_steps", "/ppo/steps"),
    ("pretrain_steps", "/pretrain/steps"),
    ("sft_steps", "/sft/steps"),
    ("rm_steps", "/rm/steps"),
];

/// How `--help` names the real-model jobs (`--base`) among the presets' (`[default: 150; tiny
/// 60, …, --base/cpu 30, --base/gpu 200]`): one word each, as a preset's name is.
const BASE_CPU: &str = "--base/cpu";
const BASE_GPU: &str = "--base/gpu";

/// `cmd` (the derived command line) with `[default: X]` after the help of every flag whose
/// default is a stage setting.
pub(super) fn with_stage_defaults(cmd: Command) -> Command {
    let stages = [
        ("pretrain", settings(&TrainConfig::pretrain())),
        ("sft", settings(&TrainConfig::sft())),
        ("rm", settings(&TrainConfig::rm())),
        ("dpo", settings(&DpoConfig::default())),
        ("ppo", settings(&PpoConfig::default())),
    ];
    let mut cmd = cmd;
    for (name, values) in stages {
        cmd = cmd.mut_subcommand(name, |sc| annotate(sc, |id| values.get(id).and_then(shown)));
    }
    cmd.mut_subcommand("pipeline", |sc| {
        let preset = sc
            .get_arguments()
            .find(|a| a.get_id() == "preset")
            .and_then(|a| a.get_default_values().first())
            .and_then(|v| v.to_str())
            .unwrap_or("small")
            .to_string();
        let jobs: Vec<(&str, Value)> = preset_names()
            .into_iter()
            .filter_map(|p| {
                let job = PipelineConfig::for_preset(p, &Default::default()).ok()?;
                Some((p, as_json(&job)?))
            })
            .chain(
                [(BASE_CPU, BaseSize::Cpu), (BASE_GPU, BaseSize::Gpu)]
                    .into_iter()
                    .filter_map(|(name, size)| {
                        Some((name, as_json(&PipelineConfig::for_base(size).ok()?)?))
                    }),
            )
            .collect();
        annotate(sc, |id| pipeline_default(&jobs, &preset, id))
    })
}

/// `sc` with `[default: X]` after the help of each flag (taking a value, with no clap default)
/// for which `default_of(id)` has a value.
fn annotate(sc: Command, default_of: impl Fn(&str) -> Option<String>) -> Command {
    let found: Vec<(String, String)> = sc
        .get_arguments()
        .filter(|a| {
            a.get_action().takes_values() && !a.is_positional() && a.get_default_values().is_empty()
        })
        .filter_map(|a| {
            let id = a.get_id().as_str();
            default_of(id).map(|d| (id.to_string(), d))
        })
        .collect();
    found
        .into_iter()
        .fold(sc, |sc, (id, d)| sc.mut_arg(id, |a| with_default(a, &d)))
}

/// `a` with ` [default: d]` after its help (and its long help, where it has one).
fn with_default(a: Arg, d: &str) -> Arg {
    let help = a.get_help().map(|h| format!("{h} [default: {d}]"));
    let long = a.get_long_help().map(|h| format!("{h} [default: {d}]"));
    let a = a.help(help.unwrap_or_else(|| format!("[default: {d}]")));
    match long {
        Some(h) => a.long_help(h),
        None => a,
    }
}

/// A config as JSON, through its text: an `f32` then reads as it prints (0.075, not
/// 0.07500000298…).
fn as_json<T: Serialize>(config: &T) -> Option<Value> {
    serde_json::from_str(&serde_json::to_string(config).ok()?).ok()
}

/// A config's settings by name; a nested table's (DPO's `train`) as if they were its own.
fn settings<T: Serialize>(config: &T) -> Map<String, Value> {
    let Some(Value::Object(top)) = as_json(config) else {
        return Map::new();
    };
    let mut out = Map::new();
    for v in top.values() {
        if let Value::Object(inner) = v {
            out.extend(inner.clone());
        }
    }
    out.extend(top.into_iter().filter(|(_, v)| !v.is_object()));
    out
}

/// How `--help` writes a setting: as a flag would take it, `none` for an unset option; `None`
/// for what no one flag sets (a switch, a table, a list).
fn shown(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("none".to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(x) if n.is_f64() && x != 0.0 && x.abs() < 0.01 => format!("{x:e}"),
            Some(x) if n.is_f64() => format!("{x:?}"),
            _ => n.to_string(),
        }),
        _ => None,
    }
}

/// A `pipeline` flag's default: the value of `preset`'s job, then each other preset whose job
/// differs (`500; tiny 120, base 600`).
fn pipeline_default(jobs: &[(&str, Value)], preset: &str, id: &str) -> Option<String> {
    let (_, pointer) = PIPELINE.iter().find(|(flag, _)| *flag == id)?;
    let at = |job: &Value| job.pointer(pointer).and_then(shown);
    let first = at(&jobs.iter().find(|(p, _)| *p == preset)?.1)?;
    let others: Vec<String> = jobs
        .iter()
        .filter(|(p, _)| *p != preset)
        .filter_map(|(p, job)| at(job).filter(|v| *v != first).map(|v| format!("{p} {v}")))
        .collect();
    Some(if others.is_empty() {
        first
    } else {
        format!("{first}; {}", others.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command as Sub};
    use clap::FromArgMatches;

    /// The commands whose defaults are stage settings, with the flags each requires.
    const STAGES: &[(&str, &[&str])] = &[
        (
            "pretrain",
            &["--corpus", "c.txt", "--tokenizer", "t.json", "--out", "o"],
        ),
        ("sft", &["--init", "i", "--data", "d.jsonl", "--out", "o"]),
        ("rm", &["--init", "i", "--data", "d.jsonl", "--out", "o"]),
        ("dpo", &["--init", "i", "--data", "d.jsonl", "--out", "o"]),
        ("ppo", &["--policy", "p", "--rm", "r", "--out", "o"]),
        ("pipeline", &[]),
    ];

    /// Flags of those commands that take a value and show no `[default: X]`: their default is a
    /// path, another flag or the checkpoint's own value, said in words.
    const IN_WORDS: &[&str] = &[
        "--arch",
        "--base",
        "--n-layer",
        "--n-embd",
        "--n-head",
        "--n-ctx",
        "--dropout",
        "--norm-samples",
        "--reference",
        "--rm",
        "--reward-token",
        "--value-init",
        "--prompts",
        "--ptx-corpus",
        "--assets",
        "--out",
        "--compare",
        "--seed",
        "--lora-rank",
        "--lora-alpha",
        "--lora-targets",
        "--lora-dropout",
    ];

    /// The settings `rlhf <args>` runs its stage with, as text.
    fn settings_of(args: &[&str]) -> String {
        let line = std::iter::once("rlhf").chain(args.iter().copied());
        let parsed = crate::cli::command()
            .try_get_matches_from(line)
            .and_then(|m| Cli::from_arg_matches(&m));
        let cli = parsed.unwrap_or_else(|e| panic!("rlhf {}: {e}", args.join(" ")));
        match cli.command {
            Sub::Pretrain(a) => {
                let t = a.optim.apply(TrainConfig::pretrain());
                format!(
                    "{t:?} {} {} {:?}",
                    a.val_fraction,
                    a.model.preset,
                    a.model.overrides()
                )
            }
            Sub::Sft(a) => {
                let t = a.optim.apply(TrainConfig::sft());
                format!("{t:?} {} {:?}", a.val_fraction, a.dropout)
            }
            Sub::Rm(a) => {
                let t = a.optim.apply(TrainConfig::rm());
                format!("{t:?} {} {} {}", a.val_fraction, a.norm_max, a.dropout)
            }
            Sub::Dpo(a) => format!("{:?}", a.config()),
            Sub::Ppo(a) => format!("{:?}", a.config()),
            Sub::Pipeline(a) => format!("{:?}", a.config(crate::pipeline::BaseSize::Cpu).unwrap()),
            _ => unreachable!("not a stage command: {args:?}"),
        }
    }

    /// The settings `rlhf pipeline <args>` runs with on a device of `size`.
    fn pipeline_of(args: &[&str], size: BaseSize) -> String {
        let line = std::iter::once("rlhf").chain(args.iter().copied());
        let m = crate::cli::command().try_get_matches_from(line).unwrap();
        match Cli::from_arg_matches(&m).unwrap().command {
            Sub::Pipeline(a) => format!("{:?}", a.config(size).unwrap()),
            _ => unreachable!("parsed as pipeline"),
        }
    }

    /// `rlhf <sub> --help` as a list of (flag, the text of each `[default: …]` after it).
    fn help_defaults(sub: &str) -> Vec<(String, Vec<String>)> {
        let mut cmd = crate::cli::command();
        let help = cmd.find_subcommand_mut(sub).unwrap().render_long_help();
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for line in help.to_string().lines() {
            let text = line.trim_start();
            if line.len() - text.len() <= 6 && text.starts_with('-') {
                let flag = text.split([',', ' ']).find(|w| w.starts_with("--"));
                out.push((flag.unwrap_or(text).to_string(), Vec::new()));
            }
            for (at, tag) in line.match_indices("[default: ") {
                let value = line[at + tag.len()..].split(']').next().unwrap_or_default();
                out.last_mut().unwrap().1.push(value.to_string());
            }
        }
        out
    }

    /// Every `[default: X]` in the help of the stage commands is the stage config's default:
    /// giving the flag X runs the same settings as leaving it out (for `pipeline`, with each
    /// preset named after it too), and leaving every flag out runs the configs' own defaults.
    #[test]
    fn every_default_in_help_equals_the_stage_configs_default() {
        for (sub, required) in STAGES {
            let run = |extra: &[&str]| settings_of(&[&[*sub][..], *required, extra].concat());
            let left_out = run(&[]);
            let flags = help_defaults(sub);
            let shown: Vec<_> = flags.iter().filter(|(_, d)| !d.is_empty()).collect();
            assert!(
                shown.len() >= 4,
                "rlhf {sub} --help shows few defaults: {flags:?}"
            );
            for (flag, defaults) in shown {
                for text in defaults {
                    let (value, per_preset) = text.split_once("; ").unwrap_or((text, ""));
                    if value != "none" {
                        assert_eq!(
                            run(&[flag, value]),
                            left_out,
                            "`rlhf {sub} --help` shows {flag} [default: {text}], but `{flag} \
                             {value}` runs other settings than leaving it out"
                        );
                    }
                    for pair in per_preset.split(", ").filter(|p| !p.is_empty()) {
                        let (preset, value) = pair.split_once(' ').unwrap();
                        if let Some(size) = [(BASE_CPU, BaseSize::Cpu), (BASE_GPU, BaseSize::Gpu)]
                            .iter()
                            .find_map(|(name, size)| (*name == preset).then_some(*size))
                        {
                            let base = ["pipeline", "--base", "m.gguf"];
                            assert_eq!(
                                pipeline_of(&[&base[..], &[flag, value]].concat(), size),
                                pipeline_of(&base, size),
                                "`rlhf {sub} --help` shows {flag} {value} for {preset}, but it \
                                 is not that job's"
                            );
                            continue;
                        }
                        assert_eq!(
                            run(&["--preset", preset, flag, value]),
                            run(&["--preset", preset]),
                            "`rlhf {sub} --help` shows {flag} {value} for {preset}, but it is \
                             not the {preset} job's"
                        );
                    }
                }
                assert_eq!(defaults.len(), 1, "rlhf {sub} {flag} shows {defaults:?}");
            }
        }
        // and no clap default stands between a flag left out and the config
        let job = PipelineConfig::for_preset("small", &Default::default()).unwrap();
        let ppo = [&["ppo"][..], STAGES[4].1].concat();
        let dpo = [&["dpo"][..], STAGES[3].1].concat();
        for (args, config) in [
            (vec!["pipeline"], format!("{job:?}")),
            (ppo, format!("{:?}", PpoConfig::default())),
            (dpo, format!("{:?}", DpoConfig::default())),
        ] {
            assert_eq!(settings_of(&args), config, "rlhf {args:?} with no flag");
        }
    }

    /// A flag of the stage commands that takes a value either shows its default or is one whose
    /// default is said in words ([`IN_WORDS`]): a new setting cannot go without one unnoticed.
    #[test]
    fn every_stage_flag_with_a_value_shows_its_default() {
        for (sub, _) in STAGES {
            let mut cmd = crate::cli::command();
            let sc = cmd.find_subcommand_mut(sub).unwrap();
            let takes_value: Vec<String> = sc
                .get_arguments()
                .filter(|a| a.get_action().takes_values() && !a.is_required_set())
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .collect();
            for (flag, defaults) in help_defaults(sub) {
                if takes_value.contains(&flag) && !IN_WORDS.contains(&flag.as_str()) {
                    assert!(!defaults.is_empty(), "rlhf {sub} {flag} shows no default");
                }
            }
        }
    }

    #[test]
    fn settings_are_shown_as_flags_take_them() {
        let show = |v: Value| shown(&v).unwrap();
        assert_eq!(show(serde_json::json!(1e-4)), "1e-4");
        assert_eq!(show(serde_json::json!(0.25)), "0.25");
        assert_eq!(show(serde_json::json!(1.0)), "1.0");
        assert_eq!(show(serde_json::json!(0.0)), "0.0");
        assert_eq!(show(serde_json::json!(10_000)), "10000");
        assert_eq!(show(Value::Null), "none");
        assert_eq!(show(serde_json::json!("ppo")), "ppo");
        assert_eq!(shown(&serde_json::json!(true)), None);
        // an f32 setting reads as it prints, and parses back to the same f32
        let v = &settings(&PpoConfig::default())["kl_coef"];
        assert_eq!(
            show(v.clone()).parse::<f32>().unwrap(),
            PpoConfig::default().kl_coef
        );
    }
}
