//! Micro-batches (`util::shards`): a batch cut into micro-batches on parallel threads gives the
//! whole batch's loss and gradient, and dropout masks do not depend on the thread schedule.

use crate::common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use rlhf::config::ModelConfig;
use rlhf::config::TrainConfig;
use rlhf::data::batching::{sft_batch, Batch, SftExample};
use rlhf::model::{InitRng, Lm};
use rlhf::stages::lm_train::batch_grads;
use rlhf::train::guard::Guard;
use rlhf::util::rng::Rng;
use rlhf::util::tensors::to_vec;

fn tiny(dropout: f64) -> ModelConfig {
    let mut c = ModelConfig::preset("tiny").unwrap();
    c.vocab_size = 97;
    c.dropout = dropout;
    c
}

/// An SFT batch of 5 rows of different lengths and prompt sizes (so the micro-batches hold
/// different numbers of response tokens and their weights matter).
fn batch() -> Batch {
    let mut r = Rng::new(3);
    let examples: Vec<SftExample> = (0..5)
        .map(|i| {
            SftExample::single(
                (0..12 + 7 * i).map(|_| 1 + r.below(95) as u32).collect(),
                3 + 2 * i,
            )
        })
        .collect();
    let refs: Vec<&SftExample> = examples.iter().collect();
    sft_batch(&refs, 0)
}

struct Flatten<'a> {
    grads: &'a GradientsParams,
    out: Vec<f32>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(p.id) {
            self.out.extend(to_vec(g).unwrap());
        }
    }
}

fn grads_of(model: &Lm, micro: usize, step: usize) -> (f64, Vec<f32>) {
    grads_on(model, micro, step, &Device::flex())
}

fn grads_on(model: &Lm, micro: usize, step: usize, device: &Device) -> (f64, Vec<f32>) {
    let ad = device.clone().autodiff();
    let cfg = TrainConfig {
        micro_batches: micro,
        ..TrainConfig::sft()
    };
    let guard = Guard::new("test", 1).unwrap();
    let out = batch_grads(model, &batch(), &cfg, step, &guard, &ad).unwrap();
    let (loss, g) = (out.loss, out.grads);
    let mut f = Flatten {
        grads: &g,
        out: Vec::new(),
    };
    model.visit(&mut f);
    (loss, f.out)
}

#[test]
fn micro_batches_give_the_whole_batch_gradient() {
    let dev = Device::flex();
    let model = Lm::new(&tiny(0.0), &mut InitRng::new(0), &dev).train();
    let (l1, g1) = grads_of(&model, 1, 0);
    let n_params: usize = model.num_params();
    assert_eq!(g1.len(), n_params, "every parameter has a gradient");
    for micro in [2, 3, 5] {
        let (l, g) = grads_of(&model, micro, 0);
        assert!(
            (l - l1).abs() < 1e-5 * l1.abs(),
            "{micro} micro-batches: loss {l} vs {l1}"
        );
        let scale = rlhf::util::compare::worst(g1.iter().map(|x| x.abs()));
        let worst = rlhf::util::compare::worst(g.iter().zip(&g1).map(|(a, b)| (a - b).abs()));
        assert!(
            worst <= 1e-4 * scale,
            "{micro} micro-batches: gradient off by {worst} (largest {scale})"
        );
    }
}

/// The same micro-batches give the same bits whether they run on parallel threads (each in a
/// thread pool of its own) or in turn on one thread (as `shards::run` does inside a
/// micro-batch), and another step draws other masks.
#[test]
fn dropout_masks_follow_seed_step_and_micro_batch_not_threads() {
    let dev = Device::flex();
    let model = Lm::new(&tiny(0.2), &mut InitRng::new(0), &dev).train();
    let (la, ga) = grads_of(&model, 2, 4);
    // inside a micro-batch of an outer run, the inner run's two micro-batches go in turn
    let mut inner =
        rlhf::util::shards::run(2, &dev, |i| Ok((i == 0).then(|| grads_of(&model, 2, 4)))).unwrap();
    let (lb, gb) = inner.swap_remove(0).unwrap();
    assert_eq!(
        la.to_bits(),
        lb.to_bits(),
        "same step, same masks, same loss"
    );
    assert!(
        ga.iter().zip(&gb).all(|(a, b)| a.to_bits() == b.to_bits()),
        "threads or one thread: the same gradient bits"
    );
    let (lc, _) = grads_of(&model, 2, 5);
    assert_ne!(la, lc, "another step draws other masks");
    // without dropout the loss is different again (the masks really act)
    let (l0, _) = grads_of(&model.clone().with_dropout(0.0), 2, 4);
    assert_ne!(la, l0);
}

/// On a GPU the step runs the whole batch in one pass, each micro-batch's rows still reading its
/// own dropout stream: the same masks, so the same loss and gradient as the CPU's threads.
#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn one_gpu_pass_drops_what_the_cpu_micro_batches_drop() {
    let wgpu = common::wgpu_device();
    let cfg = tiny(0.3);
    let on = |dev: &Device| Lm::new(&cfg, &mut InitRng::new(0), dev).train();
    let (lc, gc) = grads_of(&on(&Device::flex()), 2, 4);
    let (lg, gg) = grads_on(&on(&wgpu), 2, 4, &wgpu);
    assert!(
        (lg - lc).abs() < 1e-5 * lc.abs(),
        "loss {lg} on wgpu, {lc} on the CPU"
    );
    let err = common::max_rel_diff(&gc, &gg);
    assert!(err < 1e-4, "gradients differ by {err} (relative)");
}
