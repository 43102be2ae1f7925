//! JSON text as people read it: pretty-printed with every object's keys sorted, whatever order
//! the writer used (the run report shows `pipeline.json` this way).

use anyhow::Result;

/// `text` (any JSON document) pretty-printed, object keys in sorted order.
pub fn sorted_pretty(text: &str) -> Result<String> {
    let mut v: serde_json::Value = serde_json::from_str(text)?;
    v.sort_all_objects();
    Ok(serde_json::to_string_pretty(&v)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_at_every_level() {
        let s = sorted_pretty(r#"{"b": 1, "a": {"d": 0.5, "c": null}}"#).unwrap();
        assert_eq!(
            s,
            "{\n  \"a\": {\n    \"c\": null,\n    \"d\": 0.5\n  },\n  \"b\": 1\n}"
        );
    }
}
