//! The autodiff backward step of the fused linear layer: `Autodiff<B>` saves x and the weight in
//! the forward and, in the backward, runs `linear_bwd` for the gradients of x, the weight and the
//! bias.

use super::LinearExt;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::Autodiff;

#[derive(Debug)]
struct LinearBackward;

impl<B: LinearExt> Backward<B, 3> for LinearBackward {
    /// Saved for backward: x, weight.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _c: &mut Checkpointer) {
        let (x, weight) = ops.state;
        let dy = grads.consume::<B>(&ops.node);
        let (dx, dw, db) = B::linear_bwd(x, weight, dy);
        let [px, pw, pb] = ops.parents;
        for (parent, grad) in [(px, dx), (pw, dw), (pb, db)] {
            if let Some(p) = parent {
                grads.register::<B>(p.id, grad);
            }
        }
    }
}

impl<B: LinearExt, C: CheckpointStrategy> LinearExt for Autodiff<B, C> {
    fn linear_fwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let prep = <LinearBackward as Backward<B, 3>>::prepare::<C>(
            LinearBackward,
            [x.node(), weight.node(), bias.node()],
        )
        .compute_bound()
        .stateful();
        let (x, weight, bias) = (
            x.into_primitive(),
            weight.into_primitive(),
            bias.into_primitive(),
        );
        match prep {
            OpsKind::Tracked(prep) => {
                let y = B::linear_fwd(x.clone(), weight.clone(), bias);
                prep.finish((x, weight), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::linear_fwd(x, weight, bias)),
        }
    }

    fn linear_bwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // not differentiable itself: plain values in, untracked values out
        let (dx, dw, db) = B::linear_bwd(
            x.into_primitive(),
            weight.into_primitive(),
            dy.into_primitive(),
        );
        (
            FloatTensor::<Self>::new(dx),
            FloatTensor::<Self>::new(dw),
            FloatTensor::<Self>::new(db),
        )
    }
}
