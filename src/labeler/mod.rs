//! Labelers: a person at the terminal (`human`, its crash-safe files in `human_store`), or a
//! simulated one that scores texts (VADER sentiment) and turns scores into (optionally noisy)
//! rankings, standing in for human preference labels.

pub mod bradley_terry;
pub mod human;
pub mod human_store;
pub mod sentiment;

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
