//! The ranking loss as a burn backend extension: the WGSL kernel (`shaders/ranking_loss.wgsl`) on
//! CubeCL/wgpu, a lazy Fusion wrapper (generated), and an Autodiff implementation whose backward
//! step reuses the gradient the forward kernel already produced.
//!
//! Why an extension and not burn ops: the loss over ragged K-wise rankings is a gather of
//! C(K,2) pairs per prompt followed by several elementwise ops and a reduction, each a kernel
//! launch and a tape entry; the kernel does forward and dL/dr in one launch and the backward is
//! a single broadcast multiply.
//!
//! The public entry point is [`super::ranking_loss`]; this module only holds the backend glue.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::{
    into_contiguous, kernel_source, CubeBackend, CubeTensor, KernelSource, SourceKernel,
    SourceTemplate,
};
use burn::backend::{backend_extension, Autodiff, AutodiffBackend, Backend, TensorMetadata};
use burn::backend::{Shape, Slice};
use burn::cubecl::prelude::KernelId;
use burn::cubecl::server::KernelArguments;
use burn::cubecl::{CubeCount, CubeDim};
use derive_new::new;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Invocations (one per prompt) in a workgroup.
const WORKGROUP: u32 = 64;

static KERNEL_LAUNCHES: AtomicUsize = AtomicUsize::new(0);

/// How many times the WGSL ranking-loss kernel has been launched in this process (tests use it
/// to prove the kernel path, not the reference twin, ran).
pub fn kernel_launches() -> usize {
    KERNEL_LAUNCHES.load(Ordering::Relaxed)
}

/// Shape of the packed kernel output: (N + P,) for rewards (N,) and P prompts.
fn packed_shape(rewards: &Shape, ks: &[u32]) -> Shape {
    Shape::new([rewards.num_elements() + ks.len()])
}

#[backend_extension(Autodiff, Cube, Fusion)]
pub trait RankLossExt: Backend {
    /// rewards (N,), ks (P,) with Σ ks = N → packed (N + P,): `[dL/dr (N) | loss_p / P (P)]`.
    /// Not differentiable (its first half *is* the gradient); see [`RankLossExt::rank_loss`].
    #[fusion(dtype = rewards, shape = packed_shape(rewards, ks))]
    fn rank_loss_packed(rewards: FloatTensor<Self>, ks: Vec<u32>) -> FloatTensor<Self>;

    /// rewards (N,) → loss (1,). Autodiff overrides this with a backward step.
    #[fusion(default)]
    fn rank_loss(rewards: FloatTensor<Self>, ks: Vec<u32>) -> FloatTensor<Self> {
        let n = rewards.shape().num_elements();
        let p = ks.len();
        let packed = Self::rank_loss_packed(rewards, ks); // (N + P,)
        Self::float_sum(Self::float_slice(packed, &[Slice::from(n..n + p)])) // (1,)
    }
}

kernel_source!(RankingLossRaw, "../../shaders/ranking_loss.wgsl");

/// The WGSL source with its workgroup size filled in.
struct RankingLossKernel {
    cube_dim: CubeDim,
}

impl KernelSource for RankingLossKernel {
    fn source(&self) -> SourceTemplate {
        RankingLossRaw
            .source()
            .register("wg", self.cube_dim.x.to_string())
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info(self.cube_dim)
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

/// `[P, N, off_0, …, off_P]` as the shader's `info` binding reads it.
fn kernel_info(n: usize, ks: &[u32]) -> Vec<u32> {
    let mut info = Vec::with_capacity(ks.len() + 3);
    info.push(ks.len() as u32);
    info.push(n as u32);
    let mut off = 0u32;
    info.push(off);
    for &k in ks {
        off += k;
        info.push(off);
    }
    info
}

impl RankLossExt for CubeBackend {
    fn rank_loss_packed(rewards: FloatTensor<Self>, ks: Vec<u32>) -> FloatTensor<Self> {
        let rewards: CubeTensor = into_contiguous(rewards); // (N,) f32
        let n = rewards.meta.shape().num_elements();
        let p = ks.len();
        let client = rewards.client.clone();
        let out = CubeTensor::new_contiguous(
            client.clone(),
            rewards.device.clone(),
            Shape::new([n + p]),
            client.empty((n + p) * rewards.dtype.size()),
            rewards.dtype,
        ); // (N + P,)
        let info = client.create_from_slice(bytemuck::cast_slice(&kernel_info(n, &ks)));
        let cube_dim = CubeDim::new_3d(WORKGROUP, 1, 1);
        client.launch(
            Box::new(SourceKernel::new(RankingLossKernel { cube_dim }, cube_dim)),
            CubeCount::Static((p as u32).div_ceil(WORKGROUP), 1, 1),
            KernelArguments::new().with_buffers(vec![
                rewards.handle.clone().binding(),
                out.handle.clone().binding(),
                info.binding(),
            ]),
        );
        KERNEL_LAUNCHES.fetch_add(1, Ordering::Relaxed);
        out
    }
}

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
