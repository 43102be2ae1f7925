//! Labelers: a person at the terminal (`human`, its crash-safe files in `human_store`), or a
//! simulated one that scores texts (VADER sentiment) and turns scores into (optionally noisy)
//! rankings, standing in for human preference labels.

pub mod bradley_terry;
pub mod human;
pub mod human_store;
pub mod sentiment;

use serde::{Deserialize, Serialize};

/// Who ranks the responses (`--labeler` of `rlhf label` and `rlhf pipeline`); `pipeline.json`
/// holds it as `"human"` or `"sentiment"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelerKind {
    /// A person at the terminal: type the response numbers best first (e.g. `3 1 4 2`), `s` skip,
    /// `u` undo, `q` quit, `?` help. Saves each ranking at once and resumes where it stopped.
    Human,
    /// Simulated: VADER sentiment from its human-rated lexicon, most positive first.
    Sentiment,
}

/// Distinct non-empty responses, first occurrence kept (compared after trimming): what every
/// labeler ranks.
pub fn distinct_responses(responses: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in responses {
        let t = r.trim();
        if !t.is_empty() && !out.iter().any(|o| o.trim() == t) {
            out.push(r.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn distinct_drops_duplicates_and_empties() {
        let v = vec!["a".to_string(), " a".into(), "".into(), "b".into()];
        assert_eq!(
            super::distinct_responses(&v),
            vec!["a".to_string(), "b".into()]
        );
    }
}
