//! The autodiff step of dropout: y = x · m, so dL/dx = dL/dy · m, the same kernel with the same
//! key applied to the upstream gradient. The tape keeps the key (a few words), not the mask.

use super::DropoutExt;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::Autodiff;

#[derive(Debug)]
struct DropoutBackward;

impl<B: DropoutExt> Backward<B, 1> for DropoutBackward {
    /// The key's `info` words.
    type State = Vec<u32>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _c: &mut Checkpointer) {
        let [parent] = ops.parents;
        let upstream = grads.consume::<B>(&ops.node);
        if let Some(parent) = parent {
            grads.register::<B>(parent.id, B::dropout_apply(upstream, ops.state));
        }
    }
}

impl<B: DropoutExt, C: CheckpointStrategy> DropoutExt for Autodiff<B, C> {
    fn dropout_apply(x: FloatTensor<Self>, words: Vec<u32>) -> FloatTensor<Self> {
        let prep = DropoutBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful();
        let out = B::dropout_apply(x.into_primitive(), words.clone());
        match prep {
            OpsKind::Tracked(prep) => prep.finish(words, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}
