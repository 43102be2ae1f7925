//! Backpropagation that keeps less (`train::recompute`, `train::nll`): the head in chunks of
//! positions and the trunk recomputed block by block give the loss and every gradient of burn's
//! plain backward through the whole graph (the reference twin: `masked_nll(model.forward(x))`),
//! on both families, full and LoRA; and checkpointing refuses a model with dropout.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use rlhf::config::lora::LoraTarget;
use rlhf::config::Arch;
use rlhf::data::batching::Batch;
use rlhf::model::loss::{masked_nll, tempered, token_logprobs};
use rlhf::model::{InitRng, Lm};
use rlhf::train::nll::nll_backward;
use rlhf::train::recompute::{gather_rows, head_backward, spread_rows, trunk_backward, Head, Top};
use rlhf::util::compare::{self, rel_err};
use rlhf::util::tensors::to_vec;

/// The vocabulary of `crate::lora::cfg`.
const V: usize = 97;

fn model(arch: Arch, lora: bool, ad: &Device) -> Lm {
    let c = crate::lora::cfg(arch);
    let m = Lm::new(&c, &mut InitRng::new(5), ad).with_dropout(0.0);
    if !lora {
        return m;
    }
    let cfg = crate::lora::lora(&[LoraTarget::Q, LoraTarget::V, LoraTarget::Up]);
    m.with_lora(&cfg, &mut InitRng::new(6), ad)
}

/// 3 rows of 10: the first 3 targets of each row unweighted (a prompt), row 2 padded after 6.
fn batch() -> Batch {
    let (b, t) = (3, 10);
    let x: Vec<i64> = (0..b * t).map(|i| ((i * 13 + 5) % V) as i64).collect();
    let y: Vec<i64> = (0..b * t).map(|i| ((i * 29 + 2) % V) as i64).collect();
    let w: Vec<f32> = (0..b * t)
        .map(|i| {
            let (r, j) = (i / t, i % t);
            if j < 3 || (r == 2 && j >= 6) {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    Batch { b, t, x, y, w }
}

fn tensors(b: &Batch, ad: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2>) {
    rlhf::train::tensors::batch_tensors(b, ad)
}

/// Every parameter's gradient in both, flattened, in the module's order.
struct Pairs<'a> {
    a: &'a GradientsParams,
    b: &'a GradientsParams,
    out: Vec<(Vec<f32>, Vec<f32>)>,
}

impl ModuleVisitor for Pairs<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let get = |g: &GradientsParams| g.get::<D>(p.id).map(|t| to_vec(t).unwrap());
        match (get(self.a), get(self.b)) {
            (None, None) => {}
            (Some(x), Some(y)) => self.out.push((x, y)),
            (x, y) => panic!(
                "a gradient on one side only: {:?} / {:?}",
                x.is_some(),
                y.is_some()
            ),
        }
    }
}

/// The worst difference of the two sets of gradients relative to the largest of `a`'s
/// (`compare::rel_err`: NaN if any is not finite), and how many parameters were compared.
fn worst(m: &Lm, a: &GradientsParams, b: &GradientsParams) -> (f32, usize) {
    let mut p = Pairs { a, b, out: vec![] };
    m.visit(&mut p);
    let (want, got): (Vec<f32>, Vec<f32>) = p
        .out
        .iter()
        .flat_map(|(x, y)| x.iter().copied().zip(y.iter().copied()))
        .unzip();
    (rel_err(&got, &want), p.out.len())
}

fn reference(m: &Lm, b: &Batch, ad: &Device) -> (f32, GradientsParams) {
    let (x, y, w) = tensors(b, ad);
    let loss = masked_nll(m.forward(x), y, w);
    let v = to_vec(loss.clone().detach()).unwrap()[0];
    (v, GradientsParams::from_grads(loss.backward(), m))
}

#[test]
fn the_masked_nll_in_chunks_and_with_checkpointing_gives_the_plain_loss_and_gradients() {
    let ad = Device::flex().autodiff();
    let b = batch();
    for arch in [Arch::Gpt2, Arch::Llama] {
        for lora in [false, true] {
            let m = model(arch, lora, &ad);
            let (want, g_ref) = reference(&m, &b, &ad);
            for ckpt in [false, true] {
                let (loss, g) = nll_backward(&m, &b, ckpt, |l| l, &ad).unwrap();
                let got = to_vec(loss).unwrap()[0];
                let what = format!("{arch:?}, LoRA {lora}, checkpointing {ckpt}");
                assert!((got - want).abs() < 1e-5, "{what}: loss {got} vs {want}");
                let (err, n) = worst(&m, &g_ref, &g);
                assert!(err < 1e-4, "{what}: gradients differ by {err} (relative)");
                assert!(n > 0, "{what}: no gradients compared");
            }
        }
    }
}

#[test]
fn the_head_in_chunks_of_three_positions_gives_the_whole_heads_values_and_gradients() {
    let ad = Device::flex().autodiff();
    let b = batch();
    let (temp, n) = (0.7f32, b.b * b.t);
    let weights: Vec<f32> = (0..n).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
    let m = model(Arch::Llama, false, &ad);
    // the reference: log-probabilities of every position at once, Σ c_i·lp_i
    let (x, y, _) = tensors(&b, &ad);
    let c = Tensor::<1>::from_floats(weights.as_slice(), &ad);
    let lp_ref = token_logprobs(tempered(m.forward(x.clone()), temp), y.clone()).reshape([n]);
    let loss = (lp_ref.clone() * c.clone()).sum();
    let g_ref = GradientsParams::from_grads(loss.backward(), &m);
    let at = Tensor::<1, Int>::arange(0..n as i64, &ad);
    let top = |hidden: Tensor<3>| {
        let h = gather_rows(hidden.detach(), at.clone());
        let head = Head {
            temperature: temp,
            entropy: true,
            rows: 3,
        };
        let targets = y.clone().reshape([n]);
        let loss_of = |r: std::ops::Range<usize>, lp: Tensor<1>| (lp * c.clone().slice([r])).sum();
        let (out, dh, grads) = head_backward(&m, &m, (h, targets), head, loss_of)?;
        Ok(Top {
            out,
            d_hidden: spread_rows(dh, at.clone(), [b.b, b.t]),
            grads,
        })
    };
    let (out, g) = trunk_backward(&m, &m, x, false, top).unwrap();
    let (lp, lp_want) = (to_vec(out.logp).unwrap(), to_vec(lp_ref.detach()).unwrap());
    let worst_lp = compare::worst(lp.iter().zip(&lp_want).map(|(a, b)| (a - b).abs()));
    assert!(worst_lp < 1e-5, "log-probabilities differ by {worst_lp}");
    let ent = to_vec(out.entropy).unwrap();
    assert!(
        ent.iter().all(|&e| e > 0.0 && e <= (V as f32).ln() + 1e-4),
        "{ent:?}"
    );
    let (err, _) = worst(&m, &g_ref, &g);
    assert!(err < 1e-4, "gradients differ by {err} (relative)");
}

#[test]
fn checkpointing_refuses_a_model_with_dropout() {
    let ad = Device::flex().autodiff();
    let m = model(Arch::Gpt2, false, &ad).with_dropout(0.1);
    let e = nll_backward(&m, &batch(), true, |l| l, &ad).unwrap_err();
    assert!(format!("{e:#}").contains("dropout 0"), "{e:#}");
    // without checkpointing the same model trains
    nll_backward(&m, &batch(), false, |l| l, &ad).unwrap();
}
