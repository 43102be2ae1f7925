//! The autodiff backward step of the fused GELU: `Autodiff<B>` saves x in the forward and, in the
//! backward, runs `gelu_bwd` on it and the upstream gradient.

use super::GeluExt;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::Autodiff;

#[derive(Debug)]
struct GeluBackward;

impl<B: GeluExt> Backward<B, 1> for GeluBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _c: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let [parent] = ops.parents;
        if let Some(p) = parent {
            grads.register::<B>(p.id, B::gelu_bwd(ops.state, dy));
        }
    }
}

impl<B: GeluExt, C: CheckpointStrategy> GeluExt for Autodiff<B, C> {
    fn gelu_fwd(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = <GeluBackward as Backward<B, 1>>::prepare::<C>(GeluBackward, [x.node()])
            .compute_bound()
            .stateful();
        let x = x.into_primitive();
        match prep {
            OpsKind::Tracked(prep) => prep.finish(x.clone(), B::gelu_fwd(x)),
            OpsKind::UnTracked(prep) => prep.finish(B::gelu_fwd(x)),
        }
    }

    fn gelu_bwd(x: FloatTensor<Self>, dy: FloatTensor<Self>) -> FloatTensor<Self> {
        // not differentiable itself: plain values in, an untracked value out
        FloatTensor::<Self>::new(B::gelu_bwd(x.into_primitive(), dy.into_primitive()))
    }
}
