//! Which responses the reward model's normalisation bias is computed on (`rlhf rm --norm-max`).

use super::rm::TokRanking;

/// Default [`super::rm::RmJob::norm_max`]. The bias is a mean: over 1,000 responses its standard error is
/// ~3% of the reward's spread, and scoring the default job's 9,000 took ~60 s of the RM stage.
pub const DEFAULT_NORM_MAX: usize = 1000;

/// The responses the bias is computed on: the first response of every prompt, then the second,
/// and so on until `max` (0: all). Each prompt's responses are independent samples, so any
/// prefix of this order is an unbiased sample of the whole, spread over as many prompts as fit.
pub fn norm_subset(groups: &[TokRanking], max: usize) -> Vec<TokRanking> {
    let total: usize = groups.iter().map(|g| g.seqs.len()).sum();
    if max == 0 || max >= total {
        return groups.to_vec();
    }
    let mut out: Vec<TokRanking> = groups
        .iter()
        .map(|_| TokRanking { seqs: Vec::new() })
        .collect();
    let (mut taken, mut round) = (0, 0);
    while taken < max {
        for (g, o) in groups.iter().zip(out.iter_mut()) {
            if taken < max {
                if let Some(s) = g.seqs.get(round) {
                    o.seqs.push(s.clone());
                    taken += 1;
                }
            }
        }
        round += 1;
    }
    out.retain(|g| !g.seqs.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(ks: &[usize]) -> Vec<TokRanking> {
        // response j of prompt p is the sequence [p, j]
        ks.iter()
            .enumerate()
            .map(|(p, &k)| TokRanking {
                seqs: (0..k).map(|j| vec![p as u32, j as u32]).collect(),
            })
            .collect()
    }

    fn flat(g: &[TokRanking]) -> Vec<Vec<u32>> {
        g.iter().flat_map(|r| r.seqs.clone()).collect()
    }

    #[test]
    fn norm_subset_takes_one_response_per_prompt_in_turn() {
        let g = groups(&[3, 1, 2]);
        // round 0: (0,0) (1,0) (2,0); round 1: (0,1) (2,1) — prompt 1 has no second response
        assert_eq!(
            flat(&norm_subset(&g, 4)),
            vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![2, 0]]
        );
        assert_eq!(
            flat(&norm_subset(&g, 2)),
            vec![vec![0, 0], vec![1, 0]],
            "prompts that get no response are dropped"
        );
        assert_eq!(norm_subset(&g, 2).len(), 2);
        assert_eq!(flat(&norm_subset(&g, 0)), flat(&g), "0 keeps all");
        assert_eq!(flat(&norm_subset(&g, 99)), flat(&g));
    }
}
