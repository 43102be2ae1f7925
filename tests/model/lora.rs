//! LoRA on both families: fresh adapters change nothing; adapters off give the base's logits
//! exactly; merged adapters give the adapted logits; and the adapters' gradients are the full
//! weight's gradient seen through the rank-r delta (the reference twin: the same model with
//! `W + (α/r)·A·B` as a plain weight, differentiated by burn).

use burn::module::Param;
use burn::prelude::*;
use rlhf::config::lora::{LoraConfig, LoraTarget};
use rlhf::config::{Arch, ModelConfig, ModelOverrides};
use rlhf::model::dense::Dense;
use rlhf::model::{InitRng, Lm};
use rlhf::util::tensors::to_vec;

/// The tiny preset as `arch`, with a 97-token vocabulary.
pub(crate) fn cfg(arch: Arch) -> ModelConfig {
    let mut c = ModelConfig::preset("tiny")
        .unwrap()
        .with_overrides(&ModelOverrides {
            arch: Some(arch),
            ..Default::default()
        })
        .unwrap();
    c.vocab_size = 97;
    c
}

/// Rank 4, α 8, no dropout, on `targets`.
pub(crate) fn lora(targets: &[LoraTarget]) -> LoraConfig {
    LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout: 0.0,
        targets: targets.to_vec(),
    }
}

fn ids(dev: &Device) -> Tensor<2, Int> {
    let v: Vec<i64> = (0..2 * 12).map(|i| (i * 7 + 3) % 97).collect();
    Tensor::<1, Int>::from_data(TensorData::new(v, [24]), dev).reshape([2, 12])
}

/// Every adapter's B set to random values (a fresh B is zero), so the adapters do something.
fn perturb(mut m: Lm, seed: u64, dev: &Device) -> Lm {
    let mut rng = InitRng::new(seed);
    for_each_adapter(&mut m, |d| {
        let l = d.lora.as_mut().unwrap();
        let shape = l.lora_b.dims();
        let mut init = rlhf::model::init::Init::Random(&mut rng);
        l.lora_b = Param::from_tensor(init.normal(shape, 0.05, dev));
    });
    m
}

fn for_each_adapter(m: &mut Lm, mut f: impl FnMut(&mut Dense)) {
    let visit = |d: &mut Dense, f: &mut dyn FnMut(&mut Dense)| {
        if d.lora.is_some() {
            f(d)
        }
    };
    match m {
        Lm::Gpt2(g) => {
            for b in g.h.iter_mut() {
                for d in [
                    &mut b.attn.c_attn,
                    &mut b.attn.c_proj,
                    &mut b.mlp.c_fc,
                    &mut b.mlp.c_proj,
                ] {
                    visit(d, &mut f);
                }
            }
        }
        Lm::Llama(l) => {
            for b in l.model.layers.iter_mut() {
                let (a, p) = (&mut b.self_attn, &mut b.mlp);
                for d in [
                    &mut a.q_proj,
                    &mut a.k_proj,
                    &mut a.v_proj,
                    &mut a.o_proj,
                    &mut p.gate_proj,
                    &mut p.up_proj,
                    &mut p.down_proj,
                ] {
                    visit(d, &mut f);
                }
            }
        }
    }
}

fn logits(m: &Lm, dev: &Device) -> Vec<f32> {
    to_vec(m.forward(ids(dev))).unwrap()
}

#[test]
fn fresh_adapters_change_nothing_and_adapters_off_give_the_base_exactly() {
    let dev = Device::flex();
    for arch in [Arch::Gpt2, Arch::Llama] {
        let base = Lm::new(&cfg(arch), &mut InitRng::new(5), &dev);
        let want = logits(&base, &dev);
        let all = [
            LoraTarget::Q,
            LoraTarget::K,
            LoraTarget::V,
            LoraTarget::O,
            LoraTarget::Gate,
            LoraTarget::Up,
            LoraTarget::Down,
        ];
        let adapted = base.with_lora(&lora(&all), &mut InitRng::new(9), &dev);
        assert!(adapted.has_lora());
        assert_eq!(
            logits(&adapted, &dev),
            want,
            "{arch:?}: fresh adapters (B = 0)"
        );
        let adapted = perturb(adapted, 3, &dev);
        let moved = logits(&adapted, &dev);
        let diff = rlhf::util::compare::rel_err(&want, &moved);
        assert!(
            diff > 1e-3,
            "{arch:?}: perturbed adapters changed nothing ({diff})"
        );
        let off = adapted.without_lora();
        assert!(!off.has_lora());
        assert_eq!(logits(&off, &dev), want, "{arch:?}: adapters off");
    }
}

#[test]
fn merged_adapters_give_the_adapted_logits() {
    let dev = Device::flex();
    for arch in [Arch::Gpt2, Arch::Llama] {
        let base = Lm::new(&cfg(arch), &mut InitRng::new(6), &dev);
        let targets = [
            LoraTarget::Q,
            LoraTarget::V,
            LoraTarget::Up,
            LoraTarget::Down,
        ];
        let adapted = perturb(
            base.with_lora(&lora(&targets), &mut InitRng::new(2), &dev),
            4,
            &dev,
        );
        let want = logits(&adapted, &dev);
        let merged = adapted.merged();
        assert!(!merged.has_lora());
        let got = logits(&merged, &dev);
        // `worst` keeps a NaN difference (f32::max would drop it)
        let err = rlhf::util::compare::worst(want.iter().zip(&got).map(|(a, b)| (a - b).abs()));
        assert!(err < 1e-5, "{arch:?}: merged logits differ by {err}");
    }
}

/// The summed log-softmax of the logits at fixed targets: a scalar loss of the whole model.
fn loss(m: &Lm, dev: &Device) -> Tensor<1> {
    let lp = burn::tensor::activation::log_softmax(m.forward(ids(dev)), 2);
    let t = ids(dev).unsqueeze_dim::<3>(2);
    lp.gather(2, t).sum().neg()
}

#[test]
fn adapter_gradients_are_the_weight_gradient_through_the_rank_r_delta() {
    use burn::module::Module;
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    for arch in [Arch::Gpt2, Arch::Llama] {
        let base = Lm::new(&cfg(arch), &mut InitRng::new(8), &dev);
        let l = lora(&[LoraTarget::Q, LoraTarget::O, LoraTarget::Down]);
        let adapted = perturb(base.with_lora(&l, &mut InitRng::new(1), &dev), 5, &dev);
        // the twin: the adapted weights merged into plain weights that all train
        let twin = adapted.clone().merged().set_require_grad(true);
        let a = adapted.train().fork(&ad);
        let ga = loss(&a, &ad).backward();
        let t = twin.train().fork(&ad);
        let gt = loss(&t, &ad).backward();
        // merging keeps each weight's id: the twin's layer is found by the adapted one's
        let twin_weights = all_weights(&t);
        let scale = (l.alpha / l.rank as f64) as f32;
        let mut a = a;
        let mut checked = 0;
        for_each_adapter(&mut a, |d| {
            let lo = d.lora.as_ref().unwrap();
            let tw = twin_weights
                .iter()
                .find(|w| w.id == d.weight.id)
                .expect("the twin has the layer");
            // dL/dW of the twin: (C_in, C_out)
            let g_w = tw.grad(&gt).expect("the twin's weight has a gradient");
            let g_a = lo.lora_a.grad(&ga).expect("A has a gradient");
            let g_b = lo.lora_b.grad(&ga).expect("B has a gradient");
            let (a_val, b_val) = (lo.lora_a.val().inner(), lo.lora_b.val().inner());
            // W_eff = W + s·A·B: dL/dA = s·G·Bᵀ, dL/dB = s·Aᵀ·G
            let want_a = g_w.clone().matmul(b_val.transpose()).mul_scalar(scale);
            let want_b = a_val.transpose().matmul(g_w).mul_scalar(scale);
            for (what, got, want) in [("A", g_a, want_a), ("B", g_b, want_b)] {
                let (got, want) = (to_vec(got).unwrap(), to_vec(want).unwrap());
                let err = rlhf::util::compare::rel_err(&want, &got);
                assert!(err < 1e-4, "{arch:?}: dL/d{what} off by {err}");
            }
            // the frozen base weight gets no gradient at all
            assert!(
                d.weight.grad(&ga).is_none(),
                "{arch:?}: a base weight has a gradient"
            );
            checked += 1;
        });
        assert!(checked > 0, "{arch:?}: no adapted layer");
    }
}

/// Every block linear layer's weight, in the walk order of `for_each_adapter`.
fn all_weights(m: &Lm) -> Vec<Param<Tensor<2>>> {
    let mut out = Vec::new();
    match m {
        Lm::Gpt2(g) => {
            for b in &g.h {
                for d in [&b.attn.c_attn, &b.attn.c_proj, &b.mlp.c_fc, &b.mlp.c_proj] {
                    out.push(d.weight.clone());
                }
            }
        }
        Lm::Llama(l) => {
            for b in &l.model.layers {
                let (a, p) = (&b.self_attn, &b.mlp);
                for d in [
                    &a.q_proj,
                    &a.k_proj,
                    &a.v_proj,
                    &a.o_proj,
                    &p.gate_proj,
                    &p.up_proj,
                    &p.down_proj,
                ] {
                    out.push(d.weight.clone());
                }
            }
        }
    }
    out
}
