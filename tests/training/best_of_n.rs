//! `rlhf bon` (best-of-n against the RM) on tiny random checkpoints: every row of its report
//! recomputed from the candidates it wrote.

use crate::common;
use crate::fixtures;

use fixtures::s;
use rlhf::checkpoint::CheckpointKind;
use rlhf::eval::guards::win_rate;
use std::process::Command;

/// KL(best-of-n ‖ base) from its definition, for a base of M equally likely responses with
/// distinct rewards: the i-th worst is the best of n draws with probability
/// p_i = (i/M)^n − ((i−1)/M)^n, and KL = Σ p_i ln(p_i·M). M = 200,000 is within 5e-9 of the
/// continuous limit (ln n − (n − 1)/n, Beirami et al. 2024) for n ≤ 64.
fn best_of_n_kl_by_definition(n: usize) -> f64 {
    let m = 200_000u32;
    (1..=m)
        .map(|i| {
            let p =
                (i as f64 / m as f64).powi(n as i32) - ((i - 1) as f64 / m as f64).powi(n as i32);
            if p > 0.0 {
                p * (p * m as f64).ln()
            } else {
                0.0
            }
        })
        .sum()
}

/// `rlhf bon`: of each prompt's candidates the RM's best of the first n is the pick, the labeler
/// compares it with the prompt's baseline sample, and the reported KL is best-of-n's KL from its
/// definition; every row of bon.json recomputed here from candidates.jsonl.
#[test]
fn best_of_n_picks_the_rms_best_and_reports_the_exact_kl() {
    let d = common::tmp_dir("bon");
    let sft = common::random_ckpt(&d.join("sft"), CheckpointKind::Lm, 1);
    let rm = common::random_ckpt(&d.join("rm"), CheckpointKind::Rm, 2);
    let prompts = d.join("prompts.jsonl");
    std::fs::write(
        &prompts,
        "{\"prompt\":\"Define: Cat\"}\n{\"prompt\":\"Continue: It was\"}\n\
         {\"messages\":[{\"role\":\"user\",\"content\":\"Is it fine?\"},\
         {\"role\":\"assistant\",\"content\":\"Very.\"},\
         {\"role\":\"user\",\"content\":\"Shall we walk?\"}]}\n",
    )
    .unwrap();
    let out = d.join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .args([
            "bon",
            "--policy",
            s(&sft),
            "--rm",
            s(&rm),
            "--prompts",
            s(&prompts),
        ])
        .args(["--n-max", "6", "--max-new-tokens", "8", "--out", s(&out)])
        .args(["--device", "cpu"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bon.json")).unwrap()).unwrap();
    let cands: Vec<serde_json::Value> = std::fs::read_to_string(out.join("candidates.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cands.len(), 3);
    let nums = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let rows = report["rows"].as_array().unwrap();
    let ns: Vec<u64> = rows.iter().map(|r| r["n"].as_u64().unwrap()).collect();
    assert_eq!(ns, [1, 2, 4, 6]);
    let mut last_rm = f64::NEG_INFINITY;
    let mut picks_differ = false;
    for row in rows {
        let n = row["n"].as_u64().unwrap() as usize;
        let (mut lab, mut rms, mut base) = (vec![], vec![], vec![]);
        for c in &cands {
            let (rm, labeler) = (nums(&c["rm"]), nums(&c["labeler"]));
            assert_eq!(rm.len(), 7, "1 baseline + 6 candidates");
            let mut best = 1;
            for i in 2..=n {
                if rm[i] > rm[best] {
                    best = i;
                }
            }
            picks_differ |= best != 1;
            lab.push(labeler[best]);
            rms.push(rm[best]);
            base.push(labeler[0]);
        }
        let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
        // equal but for serde_json's float parsing, which may land one ulp off the written value
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
        let (rm_score, lab_score) = (
            row["rm_score"].as_f64().unwrap(),
            row["labeler_score"].as_f64().unwrap(),
        );
        assert!(
            close(rm_score, mean(&rms)),
            "n = {n}: {rm_score} vs {}",
            mean(&rms)
        );
        assert!(
            close(lab_score, mean(&lab)),
            "n = {n}: {lab_score} vs {}",
            mean(&lab)
        );
        let w = win_rate(&lab, &base, 1e-9);
        assert_eq!(row["win_rate"]["wins"].as_u64().unwrap() as usize, w.wins);
        assert_eq!(row["win_rate"]["ties"].as_u64().unwrap() as usize, w.ties);
        let kl = best_of_n_kl_by_definition(n);
        let reported = row["kl_nats"].as_f64().unwrap();
        assert!(
            (reported - kl).abs() < 1e-7,
            "n = {n}: KL {reported} vs {kl}"
        );
        assert!(
            mean(&rms) >= last_rm,
            "the best of more is never worse by the RM"
        );
        last_rm = mean(&rms);
    }
    assert!(
        picks_differ,
        "every pick was the first candidate: the test would be vacuous"
    );
}
