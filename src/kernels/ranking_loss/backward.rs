//! The autodiff backward step of the ranking loss: the forward kernel already produced dL/dr, so
//! `Autodiff<B>` keeps it as the state and the backward is one broadcast multiply by the upstream
//! gradient.

use super::RankLossExt;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Slice, TensorMetadata};

/// Backward of `rank_loss`: dL/dr (N,) from the forward kernel, times the upstream (1,) grad.
#[derive(Debug)]
struct RankLossBackward;

impl<B: Backend> Backward<B, 1> for RankLossBackward {
    /// dL/dr (N,), the first half of the packed kernel output.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _c: &mut Checkpointer) {
        let [parent] = ops.parents;
        let upstream = grads.consume::<B>(&ops.node); // (1,)
        if let Some(parent) = parent {
            let dr = ops.state; // (N,)
            let upstream = B::float_expand(upstream, dr.shape()); // (N,)
            grads.register::<B>(parent.id, B::float_mul(dr, upstream));
        }
    }
}

impl<B: RankLossExt, C: CheckpointStrategy> RankLossExt for Autodiff<B, C> {
    fn rank_loss_packed(rewards: FloatTensor<Self>, ks: Vec<u32>) -> FloatTensor<Self> {
        // A constant for the tape: gradients flow only through `rank_loss`.
        <Self as AutodiffBackend>::from_inner(B::rank_loss_packed(rewards.into_primitive(), ks))
    }

    fn rank_loss(rewards: FloatTensor<Self>, ks: Vec<u32>) -> FloatTensor<Self> {
        let n = rewards.primitive().shape().num_elements();
        let p = ks.len();
        let prep = RankLossBackward
            .prepare::<C>([rewards.node()])
            .compute_bound()
            .stateful();
        let packed = B::rank_loss_packed(rewards.into_primitive(), ks); // (N + P,)
        let loss = B::float_sum(B::float_slice(packed.clone(), &[Slice::from(n..n + p)])); // (1,)
        match prep {
            OpsKind::Tracked(prep) => {
                let dr = B::float_slice(packed, &[Slice::from(0..n)]); // (N,)
                prep.finish(dr, loss)
            }
            OpsKind::UnTracked(prep) => prep.finish(loss),
        }
    }
}
