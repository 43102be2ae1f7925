//! The autodiff backward step of the fused attention: `Autodiff<B>` records q, k, v, pad, O and L
//! in the forward and, in the backward, runs `flash_attention_bwd` (the dQ and dK/dV kernels on
//! wgpu) to register dQ, dK, dV with the parents. Kept apart from the entry (`mod.rs`) and the
//! launcher (`launch.rs`) so every kernel has the same parts.

use super::{AttentionExt, AttentionQkvExt};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::Autodiff;

/// Saved for backward: q, k, v, pad, O, L, t_past.
type FlashState<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    usize,
);

#[derive(Debug)]
struct FlashBackward;

impl<B: AttentionExt> Backward<B, 3> for FlashBackward {
    type State = FlashState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _c: &mut Checkpointer) {
        let (q, k, v, pad, out, lse, t_past) = ops.state;
        let d_out = grads.consume::<B>(&ops.node); // (B, nh, T, hs)
        let (dq, dk, dv) = B::flash_attention_bwd(q, k, v, pad, out, lse, d_out, t_past);
        let [pq, pk, pv] = ops.parents;
        for (parent, grad) in [(pq, dq), (pk, dk), (pv, dv)] {
            if let Some(p) = parent {
                grads.register::<B>(p.id, grad);
            }
        }
    }
}

impl<B: AttentionExt, C: CheckpointStrategy> AttentionExt for Autodiff<B, C> {
    fn flash_attention_fwd(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        t_past: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let prep = <FlashBackward as Backward<B, 3>>::prepare::<C>(
            FlashBackward,
            [q.node(), k.node(), v.node()],
        )
        .compute_bound()
        .stateful();
        let (q, k, v, pad) = (
            q.into_primitive(),
            k.into_primitive(),
            v.into_primitive(),
            pad.into_primitive(),
        );
        match prep {
            OpsKind::Tracked(prep) => {
                let (o, lse) =
                    B::flash_attention_fwd(q.clone(), k.clone(), v.clone(), pad.clone(), t_past);
                let state = (q, k, v, pad, o.clone(), lse.clone(), t_past);
                (prep.finish(state, o), FloatTensor::<Self>::new(lse))
            }
            OpsKind::UnTracked(prep) => {
                let (o, lse) = B::flash_attention_fwd(q, k, v, pad, t_past);
                (prep.finish(o), FloatTensor::<Self>::new(lse))
            }
        }
    }

    fn flash_attention_bwd(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        d_out: FloatTensor<Self>,
        t_past: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // not differentiable itself: plain values in, untracked values out
        let (dq, dk, dv) = B::flash_attention_bwd(
            q.into_primitive(),
            k.into_primitive(),
            v.into_primitive(),
            pad.into_primitive(),
            out.into_primitive(),
            lse.into_primitive(),
            d_out.into_primitive(),
            t_past,
        );
        (
            FloatTensor::<Self>::new(dq),
            FloatTensor::<Self>::new(dk),
            FloatTensor::<Self>::new(dv),
        )
    }
}

/// Saved for backward of the fused-c_attn attention: qkv, pad, O, L, n_head.
type QkvState<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    usize,
);

#[derive(Debug)]
struct QkvBackward;

impl<B: AttentionQkvExt> Backward<B, 1> for QkvBackward {
    type State = QkvState<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _c: &mut Checkpointer) {
        let (qkv, pad, out, lse, n_head) = ops.state;
        let d_out = grads.consume::<B>(&ops.node); // (B, nh, T, hs)
        let [parent] = ops.parents;
        if let Some(p) = parent {
            let d = B::flash_attention_qkv_bwd(qkv, pad, out, lse, d_out, n_head);
            grads.register::<B>(p.id, d);
        }
    }
}

impl<B: AttentionQkvExt, C: CheckpointStrategy> AttentionQkvExt for Autodiff<B, C> {
    fn flash_attention_qkv_fwd(
        qkv: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        n_head: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let prep = QkvBackward
            .prepare::<C>([qkv.node()])
            .compute_bound()
            .stateful();
        let (qkv, pad) = (qkv.into_primitive(), pad.into_primitive());
        match prep {
            OpsKind::Tracked(prep) => {
                let (o, lse) = B::flash_attention_qkv_fwd(qkv.clone(), pad.clone(), n_head);
                let state = (qkv, pad, o.clone(), lse.clone(), n_head);
                (prep.finish(state, o), FloatTensor::<Self>::new(lse))
            }
            OpsKind::UnTracked(prep) => {
                let (o, lse) = B::flash_attention_qkv_fwd(qkv, pad, n_head);
                (prep.finish(o), FloatTensor::<Self>::new(lse))
            }
        }
    }

    fn flash_attention_qkv_bwd(
        qkv: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        d_out: FloatTensor<Self>,
        n_head: usize,
    ) -> FloatTensor<Self> {
        // not differentiable itself: plain values in, untracked values out
        FloatTensor::<Self>::new(B::flash_attention_qkv_bwd(
            qkv.into_primitive(),
            pad.into_primitive(),
            out.into_primitive(),
            lse.into_primitive(),
            d_out.into_primitive(),
            n_head,
        ))
    }
}
