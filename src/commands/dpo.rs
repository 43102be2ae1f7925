//! `rlhf dpo`: the policy trained on rankings directly.

use super::open;
use crate::cli::DpoArgs;
use crate::stages::dpo;
use anyhow::Result;

/// `rlhf dpo`: the stage's defaults with the given flags.
pub(super) fn dpo(a: DpoArgs) -> Result<()> {
    let dev = open(a.device.device)?;
    let cfg = a.config();
    let s = dpo::run(
        dpo::DpoJob {
            lora: a.lora.config(),
            init: a.init,
            reference: a.reference,
            data: a.data,
            out: a.out.clone(),
            cfg,
            skip_invalid: a.skip_invalid,
            resume: a.resume,
        },
        &dev.device,
    )?;
    eprintln!(
        "dpo: held-out preference accuracy {:.3} -> {:.3}, margin {:+.3} -> {:+.3}, \
         loss {:.3} -> {:.3} (β {}); policy in {}",
        s.first_eval.accuracy,
        s.final_eval.accuracy,
        s.first_eval.margin,
        s.final_eval.margin,
        s.first_eval.loss,
        s.final_eval.loss,
        s.beta,
        a.out.join("ckpt").display()
    );
    Ok(())
}
