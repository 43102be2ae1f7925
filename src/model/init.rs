//! Weight initialisation from a seeded host RNG, so one seed gives one model on every device.
//!
//! Why not `Tensor::random`: it draws from the backend's own RNG — on the CPU backend (Flex) a
//! `StdRng` behind one process-wide lock, on wgpu a random kernel with its own generator — so
//! the same seed gave other weights on wgpu than on the CPU (tiny pretrain, step-1 loss 7.6344 vs
//! 7.6291), and any other thread drawing in between changed the model. Here every weight is drawn
//! on the host with burn's own `TensorData::random` from a `StdRng` seeded with the stage's seed
//! — the generator and sampler Flex uses, in the same order, so CPU runs keep the exact weights
//! they had — and uploaded to the device as data.

use burn::prelude::*;
use burn::tensor::Distribution;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Where initial weights come from.
pub enum Init<'a> {
    /// GPT-2's random init, drawn from this RNG.
    Random(&'a mut InitRng),
    /// All weights zero (LayerNorm scales one): a shell that a checkpoint's weights replace, so
    /// loading draws nothing and costs no sampling.
    Zeros,
}

/// The seeded host RNG of [`Init::Random`].
pub struct InitRng(StdRng);

impl InitRng {
    pub fn new(seed: u64) -> Self {
        Self(StdRng::seed_from_u64(seed))
    }
}

impl Init<'_> {
    /// A weight of `shape` from N(0, std), or zeros.
    pub fn normal<const D: usize>(
        &mut self,
        shape: [usize; D],
        std: f64,
        device: &Device,
    ) -> Tensor<D> {
        self.draw(shape, Distribution::Normal(0.0, std), device)
    }

    /// A weight of `shape` from U(−bound, bound), or zeros.
    pub fn uniform<const D: usize>(
        &mut self,
        shape: [usize; D],
        bound: f64,
        device: &Device,
    ) -> Tensor<D> {
        self.draw(shape, Distribution::Uniform(-bound, bound), device)
    }

    fn draw<const D: usize>(
        &mut self,
        shape: [usize; D],
        dist: Distribution,
        device: &Device,
    ) -> Tensor<D> {
        match self {
            Init::Random(rng) => {
                let data = TensorData::random::<f32, _, _>(shape, dist, &mut rng.0);
                Tensor::from_data(data, device)
            }
            Init::Zeros => Tensor::zeros(shape, device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::tensors::to_vec;

    /// The property the module exists for: the CPU backend seeded as before (`Backend::seed`)
    /// drew exactly what `InitRng` draws, so CPU runs keep their weights bit for bit.
    #[test]
    fn draws_what_the_cpu_backend_drew_from_the_same_seed() {
        let dev = Device::flex();
        dev.seed(42);
        let a = Tensor::<2>::random([7, 5], Distribution::Normal(0.0, 0.02), &dev);
        let b = Tensor::<1>::random([3], Distribution::Normal(0.0, 0.5), &dev);
        let mut rng = InitRng::new(42);
        let mut init = Init::Random(&mut rng);
        let x = init.normal([7, 5], 0.02, &dev);
        let y = init.normal([3], 0.5, &dev);
        assert_eq!(to_vec(a).unwrap(), to_vec(x).unwrap());
        assert_eq!(to_vec(b).unwrap(), to_vec(y).unwrap());
        let other = Init::Random(&mut InitRng::new(43)).normal([7, 5], 0.02, &dev);
        let first = Init::Random(&mut InitRng::new(42)).normal([7, 5], 0.02, &dev);
        assert_ne!(to_vec(other).unwrap(), to_vec(first).unwrap());
    }
}
