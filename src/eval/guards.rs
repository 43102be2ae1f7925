//! Pure evaluation arithmetic: win rate, distinct-n, the words whose frequency grew most (reward
//! hacking made visible), means. Kept free of models so tests can check them on hand-made data.
//!
//! Words: distinct-n and frequency growth count *words*, not tokenizer tokens, so they read the
//! same for every tokenizer and show what a person sees. A word is a maximal run of alphanumeric
//! characters and apostrophes, lower-cased; every other character (`!`, `,`, `.`) is a word of
//! its own, so a policy that learned to pile up "!!!" shows it; spaces and control characters
//! separate words.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// The words of `text` (see the module docs).
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || c == '\'' {
            cur.extend(c.to_lowercase());
            continue;
        }
        if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if !c.is_whitespace() && !c.is_control() {
            out.push(c.to_string());
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Wins, ties and losses of the policy against the baseline, prompt by prompt.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WinRate {
    /// (wins + ties / 2) / prompts; 0.5 when there are no prompts.
    pub rate: f64,
    pub wins: usize,
    pub ties: usize,
    pub losses: usize,
}

/// Compares `policy[i]` with `baseline[i]` (higher is better); scores within `tie_eps` of each
/// other tie and count half.
pub fn win_rate(policy: &[f64], baseline: &[f64], tie_eps: f64) -> WinRate {
    let outcomes = win_outcomes(policy, baseline, tie_eps);
    let count = |o: f64| outcomes.iter().filter(|&&x| x == o).count();
    let (wins, ties, losses) = (count(1.0), count(0.5), count(0.0));
    let n = wins + ties + losses;
    WinRate {
        rate: if n == 0 {
            0.5
        } else {
            (wins as f64 + 0.5 * ties as f64) / n as f64
        },
        wins,
        ties,
        losses,
    }
}

/// Each prompt's outcome for the policy, as [`win_rate`] counts it: 1 a win, ½ a tie, 0 a loss
/// (their mean is the win rate; the unit the interval resamples).
pub fn win_outcomes(policy: &[f64], baseline: &[f64], tie_eps: f64) -> Vec<f64> {
    policy
        .iter()
        .zip(baseline)
        .map(|(p, b)| {
            if (p - b).abs() <= tie_eps {
                0.5
            } else if p > b {
                1.0
            } else {
                0.0
            }
        })
        .collect()
}

/// distinct-n: unique n-grams / all n-grams, counted within each response (an n-gram never
/// spans two responses) and pooled over all of them. 0 when there is no n-gram at all.
pub fn distinct_n(responses: &[Vec<String>], n: usize) -> f64 {
    let (mut total, mut seen) = (0usize, HashSet::new());
    for r in responses {
        if n == 0 || r.len() < n {
            continue;
        }
        for g in r.windows(n) {
            total += 1;
            seen.insert(g.to_vec());
        }
    }
    if total == 0 {
        0.0
    } else {
        seen.len() as f64 / total as f64
    }
}

/// A word whose share of all words grew from the baseline's samples to the policy's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordGrowth {
    pub word: String,
    /// Occurrences in the baseline's / the policy's samples.
    pub baseline_count: usize,
    pub policy_count: usize,
    /// count / all words of that side.
    pub baseline_freq: f64,
    pub policy_freq: f64,
    /// policy_freq − baseline_freq.
    pub growth: f64,
}

fn counts(responses: &[Vec<String>]) -> (HashMap<&str, usize>, usize) {
    let mut m: HashMap<&str, usize> = HashMap::new();
    let mut n = 0;
    for w in responses.iter().flatten() {
        *m.entry(w.as_str()).or_default() += 1;
        n += 1;
    }
    (m, n)
}

/// The `top` words with the largest positive growth of relative frequency from `baseline` to
/// `policy` (largest first; equal growth in alphabetical order).
pub fn frequency_growth(
    baseline: &[Vec<String>],
    policy: &[Vec<String>],
    top: usize,
) -> Vec<WordGrowth> {
    let (cb, nb) = counts(baseline);
    let (cp, np) = counts(policy);
    let freq = |c: usize, n: usize| if n == 0 { 0.0 } else { c as f64 / n as f64 };
    let mut v: Vec<WordGrowth> = cp
        .iter()
        .map(|(w, &pc)| {
            let bc = cb.get(w).copied().unwrap_or(0);
            let (bf, pf) = (freq(bc, nb), freq(pc, np));
            WordGrowth {
                word: w.to_string(),
                baseline_count: bc,
                policy_count: pc,
                baseline_freq: bf,
                policy_freq: pf,
                growth: pf - bf,
            }
        })
        .filter(|g| g.growth > 0.0)
        .collect();
    v.sort_by(|a, b| b.growth.total_cmp(&a.growth).then(a.word.cmp(&b.word)));
    v.truncate(top);
    v
}

/// Arithmetic mean; None for an empty slice.
pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        None
    } else {
        Some(xs.iter().sum::<f64>() / xs.len() as f64)
    }
}

/// Perplexity from a summed negative log-likelihood over `n` tokens: exp(nll / n); None if n = 0.
pub fn perplexity(nll_sum: f64, n: usize) -> Option<f64> {
    (n > 0).then(|| (nll_sum / n as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_runs_and_punctuation() {
        assert_eq!(
            words("Great, GREAT day!! Don't"),
            vec!["great", ",", "great", "day", "!", "!", "don't"]
        );
        assert!(words(" \u{1e}\n").is_empty());
    }

    #[test]
    fn outcomes_are_what_the_win_rate_counts() {
        // prompt by prompt: a win, a tie (within 1e-9), a loss, a win
        let (p, b) = ([0.5, 0.2, -0.1, 0.9], [0.1, 0.2 + 1e-12, 0.3, 0.0]);
        let o = win_outcomes(&p, &b, 1e-9);
        assert_eq!(o, vec![1.0, 0.5, 0.0, 1.0]);
        let w = win_rate(&p, &b, 1e-9);
        assert_eq!((w.wins, w.ties, w.losses), (2, 1, 1));
        assert_eq!(o.iter().sum::<f64>() / 4.0, w.rate);
    }
}
