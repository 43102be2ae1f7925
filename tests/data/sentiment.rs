//! Tests for the VADER port: expected scores are worked out by hand from the
//! lexicon (values and arithmetic in the comments) and each was checked
//! against Python vaderSentiment 3.3.2, e.g.
//! `SentimentIntensityAnalyzer().polarity_scores("The food was good.")`
//! → `{'neg': 0.0, 'neu': 0.508, 'pos': 0.492, 'compound': 0.4404}`.
//!
//! Lexicon values used: good = 1.9, bad = -2.5, terrible = -2.1,
//! kind = 2.4; "the", "food", "was", "not", "very", "so", ... are not in it.
//! Constants: B_INCR = 0.293, C_INCR = 0.733, N_SCALAR = -0.74,
//! compound(x) = x / sqrt(x² + 15).

use rlhf::labeler::sentiment::{Scores, SentimentScorer};
use std::sync::OnceLock;

const LEXICON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/vader/vader_lexicon.txt"
);
const TOL: f64 = 1e-4;

fn scorer() -> &'static SentimentScorer {
    static SCORER: OnceLock<SentimentScorer> = OnceLock::new();
    SCORER.get_or_init(|| SentimentScorer::from_file(LEXICON).unwrap())
}

fn assert_compound(text: &str, expected: f64) {
    let got = scorer().compound(text);
    assert!(
        (got - expected).abs() < TOL,
        "{text:?}: compound {got}, expected {expected}"
    );
}

fn assert_scores(text: &str, neg: f64, neu: f64, pos: f64, compound: f64) {
    let got = scorer().polarity_scores(text);
    let want = Scores {
        neg,
        neu,
        pos,
        compound,
    };
    let close = [
        (got.neg, neg),
        (got.neu, neu),
        (got.pos, pos),
        (got.compound, compound),
    ]
    .iter()
    .all(|(g, w)| (g - w).abs() < TOL);
    assert!(close, "{text:?}: got {got:?}, expected {want:?}");
}

#[test]
fn lexicon_loads_with_known_values() {
    let s = scorer();
    assert!(s.lexicon_len() > 7000);
    assert_eq!(s.valence("good"), Some(1.9));
    assert_eq!(s.valence("bad"), Some(-2.5));
    assert_eq!(s.valence("food"), None);
}

#[test]
fn plain_word() {
    // good = 1.9: compound = 1.9 / sqrt(3.61 + 15) = 1.9 / 4.31393 = 0.4404.
    // Valences [0, 0, 0, 1.9]: pos_sum = 1.9 + 1 = 2.9, neu = 3, total = 5.9;
    // pos = 2.9 / 5.9 = 0.492, neu = 3 / 5.9 = 0.508.
    // python: polarity_scores("The food was good.")
    //   → {'neg': 0.0, 'neu': 0.508, 'pos': 0.492, 'compound': 0.4404}
    assert_scores("The food was good.", 0.0, 0.508, 0.492, 0.4404);
}

#[test]
fn negation() {
    // "not" is in NEGATE, right before good: 1.9 * -0.74 = -1.406;
    // compound = -1.406 / sqrt(1.976836 + 15) = -1.406 / 4.12030 = -0.3412.
    // neg_sum = -1.406 - 1 = -2.406, neu = 4, total = 6.406;
    // neg = 2.406 / 6.406 = 0.376, neu = 4 / 6.406 = 0.624.
    // python: polarity_scores("The food was not good.")
    //   → {'neg': 0.376, 'neu': 0.624, 'pos': 0.0, 'compound': -0.3412}
    assert_scores("The food was not good.", 0.376, 0.624, 0.0, -0.3412);
}

#[test]
fn contraction_negation() {
    // "wasn't" contains "n't": bad = -2.5 * -0.74 = 1.85;
    // compound = 1.85 / sqrt(3.4225 + 15) = 1.85 / 4.29215 = 0.4310.
    // python: polarity_scores("The food wasn't bad.")["compound"] → 0.431
    assert_compound("The food wasn't bad.", 0.4310);
}

#[test]
fn intensifier_very() {
    // "very good": 1.9 + 0.293 = 2.193;
    // compound = 2.193 / sqrt(4.809249 + 15) = 2.193 / 4.45076 = 0.4927.
    // python: polarity_scores("The food was very good.")["compound"] → 0.4927
    assert_compound("The food was very good.", 0.4927);
}

#[test]
fn intensifier_extremely_on_negative_word() {
    // The booster takes the sign of the word: -2.5 - 0.293 = -2.793;
    // compound = -2.793 / sqrt(7.800849 + 15) = -2.793 / 4.77502 = -0.5849.
    // python: polarity_scores("The movie was extremely bad.")["compound"] → -0.5849
    assert_compound("The movie was extremely bad.", -0.5849);
}

#[test]
fn booster_window_scales_by_distance() {
    // Second "very" is two words back, scaled by 0.95:
    // 1.9 + 0.293 + 0.293 * 0.95 = 1.9 + 0.293 + 0.27835 = 2.47135;
    // compound = 2.47135 / sqrt(6.10757 + 15) = 2.47135 / 4.59430 = 0.5379.
    // python: polarity_scores("The food was very very good.")["compound"] → 0.5379
    assert_compound("The food was very very good.", 0.5379);
}

#[test]
fn dampener_slightly() {
    // 1.9 - 0.293 = 1.607; compound = 1.607 / sqrt(2.582449 + 15)
    // = 1.607 / 4.19314 = 0.3832.
    // python: polarity_scores("The food was slightly good.")["compound"] → 0.3832
    assert_compound("The food was slightly good.", 0.3832);
}

#[test]
fn kind_of_dampens() {
    // "kind" (2.4) followed by "of" scores 0; for "good", the bigram
    // "kind of" (a dampener) is found three words back: 1.9 - 0.293 = 1.607,
    // compound 0.3832 as above. Valences [0, 0, 0, 0, 0, 1.607]:
    // pos_sum = 2.607, neu = 5, total = 7.607; pos = 0.343, neu = 0.657.
    // python: polarity_scores("The food was kind of good.")
    //   → {'neg': 0.0, 'neu': 0.657, 'pos': 0.343, 'compound': 0.3832}
    assert_scores("The food was kind of good.", 0.0, 0.657, 0.343, 0.3832);
}

#[test]
fn but_clause() {
    // Before "but" x0.5, after x1.5: good 1.9 * 0.5 = 0.95,
    // terrible -2.1 * 1.5 = -3.15; sum = -2.2;
    // compound = -2.2 / sqrt(4.84 + 15) = -2.2 / 4.45421 = -0.4939.
    // pos_sum = 1.95, neg_sum = -4.15, neu = 7, total = 13.1;
    // pos = 0.149, neg = 0.317, neu = 0.534.
    // python: polarity_scores("The food was good but the service was terrible.")
    //   → {'neg': 0.317, 'neu': 0.534, 'pos': 0.149, 'compound': -0.4939}
    let text = "The food was good but the service was terrible.";
    assert_scores(text, 0.317, 0.534, 0.149, -0.4939);
}

#[test]
fn all_caps_in_mixed_text() {
    // Mixed caps, "GOOD" is ALL CAPS: 1.9 + 0.733 = 2.633;
    // compound = 2.633 / sqrt(6.932689 + 15) = 2.633 / 4.68323 = 0.5622.
    // python: polarity_scores("The food was GOOD.")["compound"] → 0.5622
    assert_compound("The food was GOOD.", 0.5622);
    // A caps booster adds C_INCR too: 1.9 + (0.293 + 0.733) = 2.926;
    // compound = 2.926 / sqrt(8.561476 + 15) = 2.926 / 4.85402 = 0.6028.
    // python: polarity_scores("The food was VERY good.")["compound"] → 0.6028
    assert_compound("The food was VERY good.", 0.6028);
    // All words in caps: no emphasis, same as plain "good" (0.4404).
    // python: polarity_scores("GOOD")["compound"] → 0.4404
    assert_compound("GOOD", 0.4404);
}

#[test]
fn exclamation_marks() {
    // 3 x 0.292 = 0.876 added: 1.9 + 0.876 = 2.776;
    // compound = 2.776 / sqrt(7.706176 + 15) = 2.776 / 4.76510 = 0.5826.
    // pos_sum = 2.9 + 0.876 = 3.776, neu = 3, total = 6.776;
    // pos = 0.557, neu = 0.443.
    // python: polarity_scores("The food was good!!!")
    //   → {'neg': 0.0, 'neu': 0.443, 'pos': 0.557, 'compound': 0.5826}
    assert_scores("The food was good!!!", 0.0, 0.443, 0.557, 0.5826);
    // Capped at 4: 1.9 + 4 x 0.292 = 3.068;
    // compound = 3.068 / sqrt(9.412624 + 15) = 3.068 / 4.94091 = 0.6209.
    // python: polarity_scores("The food was good!!!!!!")["compound"] → 0.6209
    assert_compound("The food was good!!!!!!", 0.6209);
}

#[test]
fn question_marks() {
    // Two "?" add 2 x 0.18 = 0.36: 1.9 + 0.36 = 2.26;
    // compound = 2.26 / sqrt(5.1076 + 15) = 2.26 / 4.48415 = 0.5040.
    // python: polarity_scores("Is the food good??")["compound"] → 0.504
    assert_compound("Is the food good??", 0.5040);
    // A single "?" adds nothing: 0.4404.
    // python: polarity_scores("The food was good?")["compound"] → 0.4404
    assert_compound("The food was good?", 0.4404);
}

#[test]
fn never_so_boosts() {
    // "so" boosts (+0.293 = 2.193); "never so" then x1.25, and upstream's
    // distance-3 check fires again on "so" right before: x1.25.
    // 2.193 * 1.25 * 1.25 = 3.42656;
    // compound = 3.42656 / sqrt(11.74131 + 15) = 3.42656 / 5.17120 = 0.6626.
    // python: polarity_scores("It was never so good.")["compound"] → 0.6626
    assert_compound("It was never so good.", 0.6626);
}

#[test]
fn neutral_and_empty() {
    // No lexicon word: compound 0, all tokens neutral.
    // python: polarity_scores("The table is made of wood.")
    //   → {'neg': 0.0, 'neu': 1.0, 'pos': 0.0, 'compound': 0.0}
    assert_scores("The table is made of wood.", 0.0, 1.0, 0.0, 0.0);
    // python: polarity_scores("") → {'neg': 0.0, 'neu': 0.0, 'pos': 0.0, 'compound': 0.0}
    assert_scores("", 0.0, 0.0, 0.0, 0.0);
}

#[test]
fn rank_by_sentiment_orders_most_positive_first() {
    let texts: Vec<String> = [
        "The table is made of wood.", // 0.0
        "The food was very good.",    // 0.4927
        "The food was not good.",     // -0.3412
        "The food was good.",         // 0.4404
        "The table is made of wood.", // 0.0, tie with index 0
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(scorer().rank_by_sentiment(&texts), vec![1, 3, 0, 4, 2]);
}

#[test]
fn loader_reports_file_and_line() {
    let path = std::env::temp_dir().join(format!("vader_bad_{}.txt", std::process::id()));
    std::fs::write(&path, "good\t1.9\t0.9\t[2]\n\nbad\toops\t0.5\t[-2]\n").unwrap();
    let err = SentimentScorer::from_file(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("oops"), "{err}");

    let err = SentimentScorer::from_str("good\t1.9\nno-tab-here\n").unwrap_err();
    assert!(err.contains("line 2"), "{err}");

    let missing = "/nonexistent/vader_lexicon.txt";
    let err = SentimentScorer::from_file(missing).unwrap_err();
    assert!(err.contains(missing), "{err}");
}

#[test]
fn from_str_matches_python_parsing() {
    // Later duplicates override earlier ones, as in a Python dict.
    let s = SentimentScorer::from_str("ok\t1.6\t0.1\t[1]\r\nok\t1.2\t0.4\t[1]").unwrap();
    assert_eq!(s.valence("ok"), Some(1.2));
    assert_eq!(s.lexicon_len(), 1);
}
