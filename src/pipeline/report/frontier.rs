//! The report's reward–KL frontier (`frontier/frontier.json`, written by `--compare`): a table of
//! every method's point and a plot of win rate against KL, best-of-n as a curve and each trained
//! policy as a point.

use super::plots::{line_plot, Legend, Series};
use crate::pipeline::frontier::{Frontier, Point};
use anyhow::Result;
use std::fmt::Write;
use std::path::Path;

/// File name of the plot in `plots/`.
pub const PLOT: &str = "frontier.png";

/// The plot's series: SFT and best-of-n as one curve, then one point per other method.
fn series(f: &Frontier) -> Vec<Series> {
    let is_curve = |p: &Point| p.method == "SFT" || p.method.starts_with("best-of-");
    let curve: Vec<(f64, f64)> = f
        .points
        .iter()
        .filter(|p| is_curve(p))
        .map(|p| (p.kl_nats, p.win_rate))
        .collect();
    let mut out = vec![Series::line("SFT, best-of-n (n = 2 … 64)", curve)];
    out.extend(
        f.points
            .iter()
            .filter(|p| !is_curve(p))
            .map(|p| Series::line(&p.method, vec![(p.kl_nats, p.win_rate)])),
    );
    out
}

/// Draws `plot_dir/frontier.png`; returns whether it was drawn.
pub fn plot(plot_dir: &Path, f: &Frontier) -> Result<bool> {
    std::fs::create_dir_all(plot_dir)?;
    line_plot(
        &plot_dir.join(PLOT),
        "Reward–KL frontier (temperature 1)",
        "KL(policy ‖ SFT), nats per response",
        "win rate over SFT (gold labeler)",
        &series(f),
        Legend::LowerRight,
    )
}

/// The report's section: the table, then the plot when there is one (path relative to the run).
pub fn section(s: &mut String, f: &Frontier, plot: Option<&str>) {
    let _ = writeln!(
        s,
        "## Reward–KL frontier\n\nEvery method against an SFT sample on {} held-out prompts, all \
         sampled at temperature {} (the job's own evaluation above is at 0.7): the gold \
         labeler's win rate and mean score, KL(policy ‖ SFT) (best-of-n: its upper bound \
         ln n − (n−1)/n, reached when no two candidates tie; the others estimated on their \
         samples), held-out perplexity, and the method's wall time (best-of-n: one sampling run \
         for every n).\n",
        f.prompts, f.temperature
    );
    let _ = writeln!(
        s,
        "| method | KL (nats) | win rate | labeler score | held-out ppl | wall time |\n\
         |---|---|---|---|---|---|"
    );
    for p in &f.points {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.3} | {:.3} | {:.1} | {:.0} s |",
            p.method, p.kl_nats, p.win_rate, p.labeler_score, p.heldout_ppl, p.seconds
        );
    }
    s.push('\n');
    if let Some(path) = plot {
        let _ = writeln!(s, "![Reward–KL frontier]({path})\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(method: &str, kl: f64, win: f64) -> Point {
        Point {
            method: method.into(),
            kl_nats: kl,
            win_rate: win,
            labeler_score: 0.1,
            heldout_ppl: 150.0,
            seconds: 3.0,
        }
    }

    #[test]
    fn best_of_n_is_one_curve_and_each_policy_a_point() {
        let f = Frontier {
            prompts: 10,
            temperature: 1.0,
            points: vec![
                point("SFT", 0.0, 0.5),
                point("best-of-2", 0.19, 0.6),
                point("PPO", 4.0, 0.9),
                point("RLOO", 3.0, 0.85),
            ],
        };
        let s = series(&f);
        let names: Vec<&str> = s.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["SFT, best-of-n (n = 2 … 64)", "PPO", "RLOO"]);
        assert_eq!(s[0].points, vec![(0.0, 0.5), (0.19, 0.6)]);
        assert_eq!(s[2].points, vec![(3.0, 0.85)]);
        let mut md = String::new();
        section(&mut md, &f, Some("plots/frontier.png"));
        assert!(
            md.contains("| RLOO | 3.00 | 0.850 | 0.100 | 150.0 | 3 s |"),
            "{md}"
        );
        assert!(md.contains("![Reward–KL frontier](plots/frontier.png)"));
    }
}
