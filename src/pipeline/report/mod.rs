//! `rlhf report --run DIR` (and the pipeline's last step): writes `DIR/report.md` and the plots
//! in `DIR/plots/` from whatever the run directory holds. Inputs, all optional:
//! `pipeline.json`, `timings.json`, `{pretrain,sft,rm,ppo}/metrics.csv`, `eval/eval.json` with
//! `eval/samples_{policy,baseline}.jsonl` (policy = PPO, baseline = SFT), and
//! `eval_noptx/eval.json` (a run without ptx, for the alignment-tax comparison), and
//! `frontier/frontier.json` (`--compare`, the reward–KL frontier).
//!
//! The parts: reading the run directory into the types the stages wrote (`inputs`), checking
//! the targets of the default job (`targets`), drawing plots (`plots`) and writing the text
//! (`markdown`); [`write_report`] below puts them together.

pub mod frontier;
pub mod inputs;
pub mod markdown;
pub mod plots;
pub mod targets;

use anyhow::{Context, Result};
use inputs::{read_run, Metrics, RunInputs};
use markdown::render;
use plots::{line_plot, Legend, Series};
use std::path::{Path, PathBuf};
use targets::RM_ACCURACY_MIN;

/// One plot: file name in `plots/`, title, y label, series.
struct PlotSpec {
    file: &'static str,
    title: &'static str,
    y: &'static str,
    series: Vec<Series>,
    legend: Legend,
}

fn cols(m: &Option<Metrics>, cols: &[(&str, &str)]) -> Vec<Series> {
    match m {
        Some(m) => cols
            .iter()
            .map(|(c, name)| Series::line(name, m.series(c)))
            .collect(),
        None => Vec::new(),
    }
}

fn specs(inp: &RunInputs) -> Vec<PlotSpec> {
    let loss = [("loss/train", "train"), ("loss/eval", "held-out")];
    let mut rm = cols(
        &inp.rm,
        &[
            ("rm/accuracy_train", "train batch"),
            ("rm/accuracy", "held-out"),
        ],
    );
    let steps: Vec<f64> = rm
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    if let (Some(lo), Some(hi)) = (
        steps.iter().copied().reduce(f64::min),
        steps.iter().copied().reduce(f64::max),
    ) {
        rm.push(Series::target("target 0.75", RM_ACCURACY_MIN, lo, hi));
    }
    vec![
        PlotSpec {
            file: "pretrain_loss.png",
            title: "Pretraining loss",
            y: "loss (nats/token)",
            series: cols(&inp.pretrain, &loss),
            legend: Legend::UpperRight,
        },
        PlotSpec {
            file: "sft_loss.png",
            title: "SFT loss (response tokens)",
            y: "loss (nats/token)",
            series: cols(&inp.sft, &loss),
            legend: Legend::UpperRight,
        },
        PlotSpec {
            file: "rm_accuracy.png",
            title: "Reward model pairwise accuracy",
            y: "accuracy",
            series: rm,
            legend: Legend::LowerRight,
        },
        PlotSpec {
            file: "ppo_reward.png",
            title: "PPO reward per step",
            y: "reward",
            series: cols(
                &inp.ppo,
                &[
                    ("ppo/rm_score", "RM score"),
                    ("ppo/reward", "reward (RM − β·KL)"),
                ],
            ),
            legend: Legend::LowerRight,
        },
        PlotSpec {
            file: "ppo_kl.png",
            title: "PPO KL to the SFT model per step",
            y: "KL (nats)",
            series: cols(&inp.ppo, &[("ppo/kl", "KL")]),
            legend: Legend::LowerRight,
        },
    ]
}

/// Writes `run_dir/report.md` (and `run_dir/plots/*.png`); returns the report's path.
pub fn write_report(run_dir: &Path) -> Result<PathBuf> {
    if !run_dir.is_dir() {
        anyhow::bail!("run directory {} does not exist", run_dir.display());
    }
    let inp = read_run(run_dir)?;
    let plot_dir = run_dir.join("plots");
    let mut plots = Vec::new();
    for spec in specs(&inp) {
        if spec.series.iter().all(|s| s.points.is_empty() || s.dashed) {
            continue;
        }
        std::fs::create_dir_all(&plot_dir)
            .with_context(|| format!("creating {}", plot_dir.display()))?;
        let path = plot_dir.join(spec.file);
        if line_plot(&path, spec.title, "step", spec.y, &spec.series, spec.legend)? {
            plots.push((spec.title.to_string(), format!("plots/{}", spec.file)));
        }
    }
    let title = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| run_dir.display().to_string());
    let frontier_plot = match &inp.frontier {
        Some(f) if frontier::plot(&plot_dir, f)? => Some(format!("plots/{}", frontier::PLOT)),
        _ => None,
    };
    let text = render(&inp, &title, &plots, frontier_plot.as_deref());
    let out = run_dir.join("report.md");
    crate::util::fs::write_atomic(&out, text.as_bytes())?;
    Ok(out)
}
