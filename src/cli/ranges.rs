//! Value parsers for the numeric flags whose valid range depends on nothing else: a value outside
//! it is a usage error (exit code 2) that names the flag, the range and the value, before any
//! file is read. Checks that need the data or other flags (a split that leaves nothing to train
//! on, `--rloo-k` dividing `--rollout-batch`) are the stages' and exit with code 1.

use crate::data::rankings::MAX_K;

/// The largest `--batch-size` (sequences, or prompts for `rm` and `dpo`): far above any batch
/// these presets train (GPT-3 used 1,536 sequences), so that a mistyped number is refused here
/// rather than failing an allocation of terabytes.
pub const MAX_BATCH: usize = 65_536;

/// The largest DPO `--beta`: the paper's values are 0.1–0.5, and a larger β only sharpens the
/// sigmoid further, while β times a log-ratio must stay far inside the range of an f32.
pub const MAX_BETA: f64 = 1000.0;

fn number(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|e| format!("not a number ({e})"))
}

/// A whole number in `range`: a negative one is out of range rather than "not a number".
fn count(s: &str, range: std::ops::RangeInclusive<usize>, words: &str) -> Result<usize, String> {
    let v = s
        .trim()
        .parse::<i128>()
        .map_err(|e| format!("not a whole number ({e})"))?;
    let v = usize::try_from(v).unwrap_or(0);
    within(v, range.contains(&v), words)
}

/// `v` when `ok` (false for NaN, as every comparison with it is), else the range in words (clap
/// puts the flag and the value as typed before it).
fn within<T>(v: T, ok: bool, range: &str) -> Result<T, String> {
    if ok {
        Ok(v)
    } else {
        Err(format!("must be {range}"))
    }
}

/// `--lr`: AdamW moves every weight by about the learning rate each step, so above 1 the first
/// step already replaces weights initialised at ±0.02 by noise; 0 trains nothing.
pub fn learning_rate(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    within(v, v > 0.0 && v <= 1.0, "a number in (0, 1]")
}

/// `--dropout`: a probability of dropping; 1 would drop everything.
pub fn dropout(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    within(v, (0.0..1.0).contains(&v), "a number in [0, 1)")
}

/// `--val-fraction`: the share held out; both sides of the split must be non-empty.
pub fn fraction(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    within(v, v > 0.0 && v < 1.0, "a number in (0, 1)")
}

/// `--beta` of `dpo`: β = 0 makes the loss constant.
pub fn beta(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    within(
        v,
        v > 0.0 && v <= MAX_BETA,
        &format!("a number in (0, {MAX_BETA}]"),
    )
}

/// `--batch-size` of the training stages.
pub fn batch_size(s: &str) -> Result<usize, String> {
    count(s, 1..=MAX_BATCH, &format!("between 1 and {MAX_BATCH}"))
}

/// `-k` of `pipeline`: the responses ranked per prompt, at least a pair and at most what the
/// ranking loss takes.
pub fn responses_per_prompt(s: &str) -> Result<usize, String> {
    let words = format!(
        "between 2 and {MAX_K} (the ranking loss takes at most {MAX_K} responses per prompt)"
    );
    count(s, 2..=MAX_K, &words)
}

/// The largest `eval --samples-per-prompt`: past it the intervals narrow by little (they shrink
/// with the square root of the samples, and prompts, not samples, are what they resample) while
/// the time grows with every sample.
pub const MAX_SAMPLES_PER_PROMPT: usize = 64;

/// `--samples-per-prompt` of `eval`.
pub fn samples_per_prompt(s: &str) -> Result<usize, String> {
    let words = format!("between 1 and {MAX_SAMPLES_PER_PROMPT}");
    count(s, 1..=MAX_SAMPLES_PER_PROMPT, &words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_refuse_nan_zero_and_huge_values_and_keep_their_ends() {
        for bad in ["NaN", "0", "-1", "1.5", "inf", "1e300", "x"] {
            assert!(learning_rate(bad).is_err(), "--lr {bad}");
            assert!(fraction(bad).is_err(), "--val-fraction {bad}");
        }
        for bad in ["NaN", "1", "-0.1", "inf", "1e300"] {
            assert!(dropout(bad).is_err(), "--dropout {bad}");
        }
        for bad in ["NaN", "0", "-0.1", "inf", "1e300", "1000.5"] {
            assert!(beta(bad).is_err(), "--beta {bad}");
        }
        for bad in ["0", "-1", "65537", "100000000000", "1.5"] {
            assert!(batch_size(bad).is_err(), "--batch-size {bad}");
        }
        for bad in ["0", "1", "10"] {
            assert!(responses_per_prompt(bad).is_err(), "-k {bad}");
        }
        assert_eq!(learning_rate("1"), Ok(1.0));
        assert_eq!(learning_rate("2e-3"), Ok(2e-3));
        assert_eq!(dropout("0"), Ok(0.0));
        assert_eq!(fraction("0.05"), Ok(0.05));
        assert_eq!(beta("1000"), Ok(1000.0));
        assert_eq!(batch_size("65536"), Ok(65_536));
        assert_eq!(batch_size("1"), Ok(1));
        assert_eq!(responses_per_prompt("9"), Ok(9));
        assert_eq!(responses_per_prompt("2"), Ok(2));
        assert_eq!(
            learning_rate("NaN"),
            Err("must be a number in (0, 1]".into())
        );
    }
}
