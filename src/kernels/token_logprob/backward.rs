//! The autodiff backward step of the fused token log-probability: `Autodiff<B>` saves the
//! logits, targets and log-sum-exp in the forward and, in the backward, runs `token_logprob_bwd`
//! for the logits' gradient (the targets are ids: no gradient).

use super::TokenLogprobExt;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::Autodiff;

#[derive(Debug)]
struct LogprobBackward;

impl<B: TokenLogprobExt> Backward<B, 1> for LogprobBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _c: &mut Checkpointer) {
        let (logits, targets, lse) = ops.state;
        let d_out = grads.consume::<B>(&ops.node);
        let [parent] = ops.parents;
        if let Some(p) = parent {
            grads.register::<B>(p.id, B::token_logprob_bwd(logits, targets, lse, d_out));
        }
    }
}

impl<B: TokenLogprobExt, C: CheckpointStrategy> TokenLogprobExt for Autodiff<B, C> {
    fn token_logprob_fwd(
        logits: FloatTensor<Self>,
        targets: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let prep =
            <LogprobBackward as Backward<B, 1>>::prepare::<C>(LogprobBackward, [logits.node()])
                .compute_bound()
                .stateful();
        let (logits, targets) = (logits.into_primitive(), targets.into_primitive());
        match prep {
            OpsKind::Tracked(prep) => {
                let (lp, lse) = B::token_logprob_fwd(logits.clone(), targets.clone());
                let state = (logits, targets, lse.clone());
                (prep.finish(state, lp), FloatTensor::<Self>::new(lse))
            }
            OpsKind::UnTracked(prep) => {
                let (lp, lse) = B::token_logprob_fwd(logits, targets);
                (prep.finish(lp), FloatTensor::<Self>::new(lse))
            }
        }
    }

    fn token_logprob_bwd(
        logits: FloatTensor<Self>,
        targets: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        d_out: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        // not differentiable itself: plain values in, an untracked value out
        FloatTensor::<Self>::new(B::token_logprob_bwd(
            logits.into_primitive(),
            targets.into_primitive(),
            lse.into_primitive(),
            d_out.into_primitive(),
        ))
    }
}
