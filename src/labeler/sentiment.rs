//! VADER sentiment scoring for the simulated labeler.
//!
//! A std-only port of `SentimentIntensityAnalyzer.polarity_scores` from
//! vaderSentiment 3.3.2 (Hutto & Gilbert 2014, MIT licence; the lexicon ships
//! at `assets/vader/vader_lexicon.txt` with its `LICENSE.txt`). The labeler
//! uses the compound score as a stand-in for a human's preference so that
//! reward models can be trained without human labels.
//!
//! Ported faithfully, quirks included: lexicon look-up (lower-cased), the
//! booster/dampener window (`B_INCR`, `B_DECR`, scaled by 0.95 and 0.9 at
//! distances two and three), ALL-CAPS emphasis (`C_INCR`, only when the text
//! mixes caps and non-caps), negation (`N_SCALAR`, the NEGATE list, "n't",
//! "no"), "never so/this", "without doubt", "least", "kind of"/"sort of",
//! the SPECIAL_CASES idioms, the "but" re-weighting (including Python's
//! `list.index` behaviour on repeated values), `!`/`?` amplification, the
//! compound normalisation `x / sqrt(x² + 15)` and the pos/neu/neg proportions.
//!
//! Skipped: the emoji-to-description translation (`emoji_utf8_lexicon.txt`),
//! so emoji score 0 unless the lexicon lists them verbatim, and the unused
//! SENTIMENT_LADEN_IDIOMS table (dead code upstream). Python's `str.isupper`
//! and `str.lower` are approximated by Rust's Unicode case functions, which
//! agree on ASCII.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use super::bradley_terry::sorted_rank;

/// Valence added by a booster word such as "very".
pub const B_INCR: f64 = 0.293;
/// Valence added by a dampener word such as "slightly".
pub const B_DECR: f64 = -0.293;
/// Valence added by an ALL-CAPS word in otherwise mixed-case text.
pub const C_INCR: f64 = 0.733;
/// Factor applied to a negated valence.
pub const N_SCALAR: f64 = -0.74;
/// Normalisation constant of the compound score.
const ALPHA: f64 = 15.0;

/// VADER's NEGATE list.
const NEGATE: &str = "aint arent cannot cant couldnt darent didnt doesnt ain't aren't can't \
    couldn't daren't didn't doesn't dont hadnt hasnt havent isnt mightnt mustnt neither don't \
    hadn't hasn't haven't isn't mightn't mustn't neednt needn't never none nope nor not nothing \
    nowhere oughtnt shant shouldnt uhuh wasnt werent oughtn't shan't shouldn't uh-uh wasn't \
    weren't without wont wouldnt won't wouldn't rarely seldom despite";

/// BOOSTER_DICT entries worth `B_INCR`.
const BOOSTERS_INCR: &str = "absolutely amazingly awfully completely considerable considerably \
    decidedly deeply effing enormous enormously entirely especially exceptional exceptionally \
    extreme extremely fabulously flipping flippin frackin fracking fricking frickin frigging \
    friggin fully fuckin fucking fuggin fugging greatly hella highly hugely incredible \
    incredibly intensely major majorly more most particularly purely quite really remarkably \
    so substantially thoroughly total totally tremendous tremendously uber unbelievably \
    unusually utter utterly very";

/// Single-word BOOSTER_DICT entries worth `B_DECR`.
const BOOSTERS_DECR: &str = "almost barely hardly kinda kindof kind-of less little marginal \
    marginally occasional occasionally partly scarce scarcely slight slightly somewhat sorta \
    sortof sort-of";

/// Two-word BOOSTER_DICT entries worth `B_DECR`.
const BOOSTER_PHRASES_DECR: [&str; 3] = ["just enough", "kind of", "sort of"];

/// VADER's SPECIAL_CASES: idioms whose valence replaces the computed one.
const SPECIAL_CASES: [(&str, f64); 9] = [
    ("the shit", 3.0),
    ("the bomb", 3.0),
    ("bad ass", 1.5),
    ("badass", 1.5),
    ("bus stop", 0.0),
    ("yeah right", -2.0),
    ("kiss of death", -1.5),
    ("to die for", 3.0),
    ("beating heart", 3.5),
];

/// VADER's scores for one text, as returned by Python's `polarity_scores`
/// (all zero for text without words).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    /// Proportion of negative sentiment, in `[0, 1]`.
    pub neg: f64,
    /// Proportion of neutral tokens, in `[0, 1]`.
    pub neu: f64,
    /// Proportion of positive sentiment, in `[0, 1]`.
    pub pos: f64,
    /// Normalised sum of valences, in `[-1, 1]`.
    pub compound: f64,
}

/// A VADER sentiment scorer holding a parsed lexicon.
#[derive(Debug, Clone)]
pub struct SentimentScorer {
    lexicon: HashMap<String, f64>,
    boosters: HashMap<&'static str, f64>,
    negate: HashSet<&'static str>,
}

impl SentimentScorer {
    /// Loads a lexicon file (`token<TAB>mean<TAB>...` per line).
    ///
    /// Errors name the file, and the line for malformed entries.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, String> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read VADER lexicon: {e}", path.display()))?;
        Self::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses lexicon text as Python's `make_lex_dict` does: blank lines are
    /// skipped, the first two tab-separated fields are the token and its mean
    /// valence, and a later duplicate token overrides an earlier one.
    ///
    /// Errors name the (1-based) line of the first malformed entry.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str) -> Result<Self, String> {
        let mut lexicon = HashMap::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let lineno = idx + 1;
            let mut fields = line.split('\t');
            let token = fields.next().unwrap_or_default();
            let mean = fields.next().ok_or_else(|| {
                format!("line {lineno}: expected `token<TAB>mean<TAB>...`, found {line:?}")
            })?;
            let value = (mean.trim().parse().ok())
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| {
                    format!("line {lineno}: invalid mean valence {mean:?} for token {token:?}")
                })?;
            lexicon.insert(token.to_string(), value);
        }
        if lexicon.is_empty() {
            return Err("VADER lexicon has no entries".to_string());
        }
        let mut boosters: HashMap<&'static str, f64> = HashMap::new();
        boosters.extend(BOOSTERS_INCR.split_whitespace().map(|w| (w, B_INCR)));
        boosters.extend(BOOSTERS_DECR.split_whitespace().map(|w| (w, B_DECR)));
        boosters.extend(BOOSTER_PHRASES_DECR.iter().map(|&w| (w, B_DECR)));
        let negate = NEGATE.split_whitespace().collect();
        Ok(Self {
            lexicon,
            boosters,
            negate,
        })
    }

    /// Number of distinct tokens in the lexicon.
    pub fn lexicon_len(&self) -> usize {
        self.lexicon.len()
    }

    /// Lexicon valence of `token` (looked up as given, not lower-cased).
    pub fn valence(&self, token: &str) -> Option<f64> {
        self.lexicon.get(token).copied()
    }

    /// VADER scores rounded as Python does (`neg`/`neu`/`pos` to 3 places,
    /// `compound` to 4), so they equal vaderSentiment 3.3.2's output.
    pub fn polarity_scores(&self, text: &str) -> Scores {
        let s = self.polarity_scores_unrounded(text);
        Scores {
            neg: round_to(s.neg, 3),
            neu: round_to(s.neu, 3),
            pos: round_to(s.pos, 3),
            compound: round_to(s.compound, 4),
        }
    }

    /// Python's `polarity_scores(text)["compound"]` (rounded to 4 places).
    pub fn compound(&self, text: &str) -> f64 {
        self.polarity_scores(text).compound
    }

    /// VADER scores before Python's final rounding.
    pub fn polarity_scores_unrounded(&self, text: &str) -> Scores {
        let words = tokenize(text);
        let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
        let cap_diff = allcap_differential(&words);
        let mut sentiments = Vec::with_capacity(words.len());
        for i in 0..words.len() {
            let kind_of = i + 1 < words.len() && lower[i] == "kind" && lower[i + 1] == "of";
            if self.boosters.contains_key(lower[i].as_str()) || kind_of {
                sentiments.push(0.0);
            } else {
                sentiments.push(self.sentiment_valence(&words, &lower, i, cap_diff));
            }
        }
        but_check(&lower, &mut sentiments);
        score_valence(&sentiments, text)
    }

    /// Indices of `texts`, most positive first, ordered by the unrounded
    /// compound score; ties keep the earlier index first.
    pub fn rank_by_sentiment(&self, texts: &[String]) -> Vec<usize> {
        let scores: Vec<f64> = texts
            .iter()
            .map(|t| self.polarity_scores_unrounded(t).compound)
            .collect();
        sorted_rank(&scores)
    }

    fn in_lexicon(&self, word_lower: &str) -> bool {
        self.lexicon.contains_key(word_lower)
    }

    fn negated(&self, word_lower: &str) -> bool {
        self.negate.contains(word_lower) || word_lower.contains("n't")
    }

    /// Valence of word `i` after VADER's local rules (`sentiment_valence`).
    fn sentiment_valence(&self, words: &[&str], lower: &[String], i: usize, cap: bool) -> f64 {
        let Some(&base) = self.lexicon.get(&lower[i]) else {
            return 0.0;
        };
        let mut valence = base;
        if lower[i] == "no" && i + 1 < words.len() && self.in_lexicon(&lower[i + 1]) {
            valence = 0.0;
        }
        if (i > 0 && lower[i - 1] == "no")
            || (i > 1 && lower[i - 2] == "no")
            || (i > 2 && lower[i - 3] == "no" && (lower[i - 1] == "or" || lower[i - 1] == "nor"))
        {
            valence = base * N_SCALAR;
        }
        if cap && is_upper(words[i]) {
            valence += if valence > 0.0 { C_INCR } else { -C_INCR };
        }
        for start_i in 0..3 {
            if i > start_i && !self.in_lexicon(&lower[i - start_i - 1]) {
                let j = i - start_i - 1;
                let mut s = self.scalar_inc_dec(words[j], &lower[j], valence, cap);
                s *= [1.0, 0.95, 0.9][start_i];
                valence += s;
                valence = self.negation_check(valence, lower, start_i, i);
                if start_i == 2 {
                    valence = self.special_idioms_check(valence, lower, i);
                }
            }
        }
        least_check(self, valence, lower, i)
    }

    /// Booster/dampener contribution of a preceding word (`scalar_inc_dec`).
    fn scalar_inc_dec(&self, word: &str, word_lower: &str, valence: f64, cap: bool) -> f64 {
        let Some(&b) = self.boosters.get(word_lower) else {
            return 0.0;
        };
        let mut scalar = if valence < 0.0 { -b } else { b };
        if is_upper(word) && cap {
            scalar += if valence > 0.0 { C_INCR } else { -C_INCR };
        }
        scalar
    }

    /// `_negation_check`, including upstream's precedence quirk at distance
    /// three (a "so"/"this" right before the word also boosts by 1.25).
    fn negation_check(&self, valence: f64, w: &[String], start_i: usize, i: usize) -> f64 {
        let negate_if = |word: &str| {
            if self.negated(word) {
                valence * N_SCALAR
            } else {
                valence
            }
        };
        let so_this = |k: usize| w[i - k] == "so" || w[i - k] == "this";
        let doubt = |k: usize| w[i - k] == "doubt";
        match start_i {
            0 => negate_if(&w[i - 1]),
            1 if w[i - 2] == "never" && so_this(1) => valence * 1.25,
            1 if w[i - 2] == "without" && doubt(1) => valence,
            1 => negate_if(&w[i - 2]),
            2 if (w[i - 3] == "never" && so_this(2)) || so_this(1) => valence * 1.25,
            2 if w[i - 3] == "without" && (doubt(2) || doubt(1)) => valence,
            2 => negate_if(&w[i - 3]),
            _ => valence,
        }
    }

    /// `_special_idioms_check`: SPECIAL_CASES around word `i` (needs `i >= 3`)
    /// and the "kind of"/"sort of"/"just enough" dampeners before it.
    fn special_idioms_check(&self, mut valence: f64, w: &[String], i: usize) -> f64 {
        let special = |s: &str| SPECIAL_CASES.iter().find(|(k, _)| *k == s).map(|c| c.1);
        let onezero = format!("{} {}", w[i - 1], w[i]);
        let twoonezero = format!("{} {} {}", w[i - 2], w[i - 1], w[i]);
        let twoone = format!("{} {}", w[i - 2], w[i - 1]);
        let threetwoone = format!("{} {} {}", w[i - 3], w[i - 2], w[i - 1]);
        let threetwo = format!("{} {}", w[i - 3], w[i - 2]);
        let before = [&onezero, &twoonezero, &twoone, &threetwoone, &threetwo];
        if let Some(v) = before.iter().find_map(|s| special(s)) {
            valence = v;
        }
        if i + 1 < w.len() {
            if let Some(v) = special(&format!("{} {}", w[i], w[i + 1])) {
                valence = v;
            }
        }
        if i + 2 < w.len() {
            if let Some(v) = special(&format!("{} {} {}", w[i], w[i + 1], w[i + 2])) {
                valence = v;
            }
        }
        for n_gram in [&threetwoone, &threetwo, &twoone] {
            if let Some(b) = self.boosters.get(n_gram.as_str()) {
                valence += b;
            }
        }
        valence
    }
}

impl FromStr for SentimentScorer {
    type Err = String;

    /// Same as [`SentimentScorer::from_str`].
    fn from_str(text: &str) -> Result<Self, String> {
        SentimentScorer::from_str(text)
    }
}

/// `_least_check`: "least" before a word negates it unless "at/very least".
fn least_check(scorer: &SentimentScorer, valence: f64, w: &[String], i: usize) -> f64 {
    if i > 0 && w[i - 1] == "least" && !scorer.in_lexicon(&w[i - 1]) {
        if i > 1 && (w[i - 2] == "at" || w[i - 2] == "very") {
            return valence;
        }
        return valence * N_SCALAR;
    }
    valence
}

/// Python's `str.split()` separators: Unicode whitespace plus `\x1c`..`\x1f`.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `SentiText._words_and_emoticons`: split on whitespace, then strip ASCII
/// punctuation from both ends unless that leaves two characters or fewer
/// (so emoticons such as ":)" and short words such as "ok!" stay whole).
fn tokenize(text: &str) -> Vec<&str> {
    text.split(is_py_space)
        .filter(|t| !t.is_empty())
        .map(|t| {
            let stripped = t.trim_matches(|c: char| c.is_ascii_punctuation());
            if stripped.chars().count() <= 2 {
                t
            } else {
                stripped
            }
        })
        .collect()
}

/// Python's `str.isupper`: at least one cased character and none lower-case.
fn is_upper(word: &str) -> bool {
    let mut cased = false;
    for c in word.chars() {
        if c.is_lowercase() {
            return false;
        }
        cased |= c.is_uppercase();
    }
    cased
}

/// True when some, but not all, words are ALL CAPS.
fn allcap_differential(words: &[&str]) -> bool {
    let caps = words.iter().filter(|w| is_upper(w)).count();
    caps > 0 && caps < words.len()
}

/// `_but_check`, simulated exactly: each value is re-weighted at the first
/// index holding an equal value (Python's `list.index`), which can differ
/// from its own index when values repeat.
fn but_check(lower: &[String], sentiments: &mut [f64]) {
    let Some(bi) = lower.iter().position(|w| w == "but") else {
        return;
    };
    for k in 0..sentiments.len() {
        let s = sentiments[k];
        let si = sentiments.iter().position(|&x| x == s).unwrap_or(k);
        if si < bi {
            sentiments[si] = s * 0.5;
        } else if si > bi {
            sentiments[si] = s * 1.5;
        }
    }
}

/// Punctuation emphasis: 0.292 per "!" (at most 4), plus 0.18 per "?" when
/// there are 2 or 3 of them, or 0.96 for more.
fn punctuation_emphasis(text: &str) -> f64 {
    let ep = text.matches('!').count().min(4) as f64 * 0.292;
    let qm = match text.matches('?').count() {
        n @ 2..=3 => n as f64 * 0.18,
        n if n > 3 => 0.96,
        _ => 0.0,
    };
    ep + qm
}

/// `score_valence`: compound and proportions from per-word valences.
fn score_valence(sentiments: &[f64], text: &str) -> Scores {
    if sentiments.is_empty() {
        return Scores::default();
    }
    let amp = punctuation_emphasis(text);
    // Plain left-to-right sum, as Python <= 3.11's `sum()` (3.12+ compensates).
    let mut sum: f64 = sentiments.iter().sum();
    if sum > 0.0 {
        sum += amp;
    } else if sum < 0.0 {
        sum -= amp;
    }
    let compound = (sum / (sum * sum + ALPHA).sqrt()).clamp(-1.0, 1.0);
    let (mut pos_sum, mut neg_sum, mut neu) = (0.0, 0.0, 0.0);
    for &s in sentiments {
        if s > 0.0 {
            pos_sum += s + 1.0;
        } else if s < 0.0 {
            neg_sum += s - 1.0;
        } else {
            neu += 1.0;
        }
    }
    if pos_sum > neg_sum.abs() {
        pos_sum += amp;
    } else if pos_sum < neg_sum.abs() {
        neg_sum -= amp;
    }
    let total = pos_sum + neg_sum.abs() + neu;
    Scores {
        neg: (neg_sum / total).abs(),
        neu: (neu / total).abs(),
        pos: (pos_sum / total).abs(),
        compound,
    }
}

/// Python's `round(x, digits)`: correctly rounded, ties to even on the exact
/// binary value (Rust's fixed-precision formatting rounds the same way).
fn round_to(x: f64, digits: usize) -> f64 {
    format!("{x:.digits$}").parse().unwrap_or(x)
}
