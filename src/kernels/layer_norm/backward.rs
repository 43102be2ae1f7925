//! The autodiff backward step of the fused LayerNorm: `Autodiff<B>` saves x, the weight, and each
//! row's mean and 1/σ in the forward and, in the backward, runs `layer_norm_bwd` for the
//! gradients of x, the weight and the bias.

use super::LayerNormExt;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::Autodiff;

#[derive(Debug)]
struct LayerNormBackward;

/// Saved for backward: x, weight, mean, 1/σ.
type State<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
);

impl<B: LayerNormExt> Backward<B, 3> for LayerNormBackward {
    type State = State<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _c: &mut Checkpointer) {
        let (x, weight, mean, rstd) = ops.state;
        let dy = grads.consume::<B>(&ops.node);
        let (dx, dw, db) = B::layer_norm_bwd(x, weight, mean, rstd, dy);
        let [px, pw, pb] = ops.parents;
        for (parent, grad) in [(px, dx), (pw, dw), (pb, db)] {
            if let Some(p) = parent {
                grads.register::<B>(p.id, grad);
            }
        }
    }
}

impl<B: LayerNormExt, C: CheckpointStrategy> LayerNormExt for Autodiff<B, C> {
    fn layer_norm_fwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let prep = <LayerNormBackward as Backward<B, 3>>::prepare::<C>(
            LayerNormBackward,
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
                let (y, mean, rstd) = B::layer_norm_fwd(x.clone(), weight.clone(), bias, eps);
                let state = (x, weight, mean.clone(), rstd.clone());
                (
                    prep.finish(state, y),
                    FloatTensor::<Self>::new(mean),
                    FloatTensor::<Self>::new(rstd),
                )
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, rstd) = B::layer_norm_fwd(x, weight, bias, eps);
                (
                    prep.finish(y),
                    FloatTensor::<Self>::new(mean),
                    FloatTensor::<Self>::new(rstd),
                )
            }
        }
    }

    fn layer_norm_bwd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // not differentiable itself: plain values in, untracked values out
        let (dx, dw, db) = B::layer_norm_bwd(
            x.into_primitive(),
            weight.into_primitive(),
            mean.into_primitive(),
            rstd.into_primitive(),
            dy.into_primitive(),
        );
        (
            FloatTensor::<Self>::new(dx),
            FloatTensor::<Self>::new(dw),
            FloatTensor::<Self>::new(db),
        )
    }
}
