//! Prompt + response sequences as the reward model and the policy see them: the one rule for
//! fitting a prompt into the context (cut from the left, keeping the end of the prompt next to
//! the response), tokenized rankings (with where each response starts, for DPO), and
//! right-padding into a batch.

use super::rankings::Ranking;
use super::tokenizer::Tok;
use anyhow::Result;

/// Cuts a prompt from the left so that it, `room` response tokens and a closing token fit the
/// context (at least one prompt token is kept).
pub fn fit_prompt(prompt: &[u32], room: usize, n_ctx: usize) -> Vec<u32> {
    let keep = n_ctx.saturating_sub(room + 1).max(1);
    prompt[prompt.len().saturating_sub(keep)..].to_vec()
}

/// One ranking, tokenized: `seqs[i]` is `prompt + response_i + <|endoftext|>`, best first.
#[derive(Debug, Clone)]
pub struct TokRanking {
    pub seqs: Vec<Vec<u32>>,
}

/// Tokenizes `prompt + response + <|endoftext|>`, cut to `n_ctx` (prompt cut from the left,
/// then the response from the right; the closing token is kept).
pub fn tokenize_pair(tok: &Tok, prompt: &str, response: &str, n_ctx: usize) -> Result<Vec<u32>> {
    Ok(tokenize_pair_counted(tok, prompt, response, n_ctx)?.0)
}

/// As [`tokenize_pair`], also saying whether the sequence had to be cut.
pub fn tokenize_pair_counted(
    tok: &Tok,
    prompt: &str,
    response: &str,
    n_ctx: usize,
) -> Result<(Vec<u32>, bool)> {
    let (s, _, cut) = tokenize_pair_split(tok, prompt, response, n_ctx)?;
    Ok((s, cut))
}

/// As [`tokenize_pair_counted`], also returning where the response starts in the sequence (the
/// length of the fitted prompt): the response's tokens and the closing one are `s[start..]`.
pub fn tokenize_pair_split(
    tok: &Tok,
    prompt: &str,
    response: &str,
    n_ctx: usize,
) -> Result<(Vec<u32>, usize, bool)> {
    let p = tok.prompt_ids(prompt)?;
    let mut r = tok.response_ids(response)?;
    let cut = p.len() + r.len() + 1 > n_ctx;
    r.truncate(n_ctx.saturating_sub(2).max(1));
    let mut s = fit_prompt(&p, r.len(), n_ctx);
    let start = s.len();
    s.extend(r);
    s.push(tok.eot);
    Ok((s, start, cut))
}

/// One ranking tokenized for a policy: the sequences of [`TokRanking`] and, for each, the index
/// of its first response token (DPO scores `seqs[i][starts[i]..]`: the response and its closing
/// `<|endoftext|>`).
#[derive(Debug, Clone)]
pub struct TokPrefs {
    pub seqs: Vec<Vec<u32>>,
    pub starts: Vec<usize>,
}

/// Tokenizes every ranking with where each response starts; also returns how many sequences
/// were longer than the context and cut (prompt from the left first).
pub fn tokenize_prefs(tok: &Tok, rs: &[Ranking], n_ctx: usize) -> Result<(Vec<TokPrefs>, usize)> {
    let mut cut = 0;
    let mut out = Vec::with_capacity(rs.len());
    for r in rs {
        let k = r.responses.len();
        let (mut seqs, mut starts) = (Vec::with_capacity(k), Vec::with_capacity(k));
        for x in &r.responses {
            let (s, start, c) = tokenize_pair_split(tok, &r.prompt, x, n_ctx)?;
            cut += usize::from(c);
            seqs.push(s);
            starts.push(start);
        }
        out.push(TokPrefs { seqs, starts });
    }
    Ok((out, cut))
}

/// Tokenizes every ranking; also returns how many sequences were longer than the context and
/// cut (prompt from the left first), so the caller can warn with the count.
pub fn tokenize_rankings(
    tok: &Tok,
    rs: &[Ranking],
    n_ctx: usize,
) -> Result<(Vec<TokRanking>, usize)> {
    let (prefs, cut) = tokenize_prefs(tok, rs, n_ctx)?;
    let out = prefs
        .into_iter()
        .map(|p| TokRanking { seqs: p.seqs })
        .collect();
    Ok((out, cut))
}

/// Prompts (each with all its responses) shuffled by `seed` and split: (training, held-out), the
/// last `round(len · val_fraction)` (at least 1) held out, so no prompt is on both sides. `data`
/// names the file in the error when too few prompts remain to train on.
pub fn split_prompts<T>(
    mut items: Vec<T>,
    val_fraction: f64,
    seed: u64,
    data: &std::path::Path,
) -> Result<(Vec<T>, Vec<T>)> {
    let mut rng = crate::util::rng::Rng::new(seed);
    rng.shuffle(&mut items);
    let n_val = ((items.len() as f64 * val_fraction).round() as usize).max(1);
    if items.len() <= n_val {
        anyhow::bail!(
            "{}: {} prompts are too few to hold {n_val} out (--val-fraction {val_fraction}) and \
             train on the rest; give more rankings, or lower --val-fraction",
            data.display(),
            items.len()
        );
    }
    let val = items.split_off(items.len() - n_val);
    Ok((items, val))
}

/// The warning printed when sequences were cut to the context.
pub fn warn_cut(stage: &str, cut: usize, total: usize, n_ctx: usize) {
    if cut > 0 {
        eprintln!(
            "{stage}: warning: {cut} of {total} prompt + response sequences were longer than the \
             context ({n_ctx} tokens) and were cut, the prompt from the left"
        );
    }
}

/// Right-pads sequences into (ids, lens); `pad` fills the tail.
pub fn pad_batch(seqs: &[&Vec<u32>], pad: u32) -> (Vec<i64>, usize, Vec<usize>) {
    let t = seqs.iter().map(|s| s.len()).max().unwrap_or(1);
    let mut ids = vec![pad as i64; seqs.len() * t];
    for (r, s) in seqs.iter().enumerate() {
        for (j, &x) in s.iter().enumerate() {
            ids[r * t + j] = x as i64;
        }
    }
    (ids, t, seqs.iter().map(|s| s.len()).collect())
}
