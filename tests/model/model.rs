//! Model tests: cross-device logits, KV cache vs full forward, SFT masking, checkpoints,
//! tokenizer round trip.

use crate::common;

use burn::module::Module;
use burn::prelude::*;
use rlhf::checkpoint::{self, CheckpointConfig, SaveRequest, TrainState};
use rlhf::config::ModelConfig;
use rlhf::data::batching::{sft_batch, SftExample};
use rlhf::model::generate::{generate, Decoder, SampleConfig};
use rlhf::model::gpt::positions;
use rlhf::model::loss::masked_nll;
use rlhf::model::{InitRng, Lm};
use rlhf::train::tensors::batch_tensors;
use rlhf::util::rng::Rng;
use rlhf::util::tensors::{ints, to_vec};

fn tiny(vocab: usize) -> ModelConfig {
    let mut c = ModelConfig::preset("tiny").unwrap();
    c.vocab_size = vocab;
    c
}

fn tokens(n: usize, vocab: usize, seed: u64) -> Vec<i64> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| r.below(vocab) as i64).collect()
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn same_weights_same_logits_on_wgpu_and_cpu() {
    let gpu = common::wgpu_device();
    let cpu = Device::flex();
    let cfg = tiny(300);
    let model = Lm::new(&cfg, &mut InitRng::new(0), &cpu);
    let d = common::tmp_dir("xdev");
    let f = d.join("m.safetensors");
    checkpoint::save_weights(&model, &f).unwrap();
    let on_gpu = checkpoint::load_weights(Lm::zeroed(&cfg, &gpu), &f).unwrap();
    let idx = tokens(2 * 40, 300, 1);
    let a = to_vec(model.forward(ints(&idx, [2, 40], &cpu))).unwrap();
    let b = to_vec(on_gpu.forward(ints(&idx, [2, 40], &gpu))).unwrap();
    let rel = common::max_rel_diff(&a, &b);
    assert!(rel <= 1e-4, "wgpu vs CPU logits differ: max rel {rel}");
    assert!(
        a.iter().any(|v| v.abs() > 1e-3),
        "logits are all ~0; the test would be vacuous"
    );
}

#[test]
fn kv_cache_matches_full_forward() {
    let dev = Device::flex();
    let cfg = tiny(200);
    let model = Lm::new(&cfg, &mut InitRng::new(0), &dev);
    // two prompts of different lengths: the short one is left-padded
    let prompts = vec![vec![5u32, 6, 7, 8, 9], vec![11u32, 12]];
    let extra = [[20u32, 21, 22], [30u32, 31, 32]];
    let (mut dec, mut logits) = Decoder::prefill(&model, &prompts, true, &dev).unwrap();
    let mut all = vec![logits.clone()];
    for (a, b) in extra[0].iter().zip(extra[1].iter()) {
        logits = dec.step(&[*a, *b]).unwrap();
        all.push(logits.clone());
    }
    // reference: each row alone, unpadded, full forward over its whole sequence
    for (r, p) in prompts.iter().enumerate() {
        let mut seq: Vec<i64> = p.iter().map(|&t| t as i64).collect();
        seq.extend(extra[r].iter().map(|&t| t as i64));
        let n = seq.len();
        let full = to_vec(model.forward(ints(&seq, [1, n], &dev))).unwrap(); // (1, n, V)
        for (s, step_logits) in all.iter().enumerate() {
            let pos = p.len() - 1 + s;
            let want = &full[pos * 200..(pos + 1) * 200];
            let rel = common::max_rel_diff(want, &step_logits[r]);
            assert!(
                rel < 1e-4,
                "row {r} step {s}: cached logits differ (rel {rel})"
            );
        }
    }
    // and generation gives the same tokens with and without the cache
    let sc = SampleConfig {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        max_new_tokens: 10,
    };
    let a = generate(&model, &prompts, &sc, 9999, &mut Rng::new(0), true, &dev).unwrap();
    let b = generate(&model, &prompts, &sc, 9999, &mut Rng::new(0), false, &dev).unwrap();
    assert_eq!(a, b);
    assert_eq!(a[0].len(), 10);
}

#[test]
fn sft_loss_ignores_prompt_tokens() {
    let dev = Device::flex().autodiff();
    let cfg = tiny(100);
    let model = Lm::new(&cfg, &mut InitRng::new(0), &dev).train();
    let e = SftExample::single(vec![1, 2, 3, 4, 50, 51, 52, 0], 4);
    let batch = sft_batch(&[&e], 0);
    let mut changed = batch.clone();
    // target positions 0..2 predict prompt tokens 2, 3, 4: change them
    assert_eq!(changed.w[..3], [0.0, 0.0, 0.0]);
    changed.y[0] = 77;
    changed.y[2] = 78;
    let run = |b: &rlhf::data::batching::Batch| {
        let (x, y, w) = batch_tensors(b, &dev);
        let loss = masked_nll(model.forward(x), y, w);
        let v = loss.clone().into_scalar::<f32>();
        let grads = loss.backward();
        let g = model.as_gpt2().unwrap().wte.weight.grad(&grads).unwrap();
        (v, to_vec(g).unwrap())
    };
    let (l1, g1) = run(&batch);
    let (l2, g2) = run(&changed);
    assert_eq!(l1, l2, "loss depends on prompt targets");
    assert_eq!(g1, g2, "gradient depends on prompt targets");
    // but changing a response target does change it
    let mut resp = batch.clone();
    resp.y[4] = 77;
    let (l3, _) = run(&resp);
    assert!((l3 - l1).abs() > 1e-6);
}

#[test]
fn checkpoint_round_trip_gives_identical_logits() {
    let dev = Device::flex();
    let tok = common::tok();
    let cfg = tiny(tok.vocab_size());
    let model = Lm::new(&cfg, &mut InitRng::new(0), &dev);
    let d = common::tmp_dir("ckpt");
    let cc = CheckpointConfig {
        kind: rlhf::checkpoint::CheckpointKind::Lm,
        stage: "test".into(),
        model: cfg.clone(),
        reward_bias: None,
        reward_gain: None,
        lora: None,
    };
    let state = TrainState {
        step: 3,
        rng: Rng::new(1),
        finished: true,
        extra: serde_json::Value::Null,
    };
    checkpoint::save(SaveRequest {
        dir: &d,
        model: &model,
        config: &cc,
        tok: &tok,
        optim: None,
        state: &state,
    })
    .unwrap();
    let loaded = checkpoint::load_lm(&d, &dev).unwrap();
    let idx = tokens(30, cfg.vocab_size, 2);
    let a = to_vec(model.forward(ints(&idx, [1, 30], &dev))).unwrap();
    let b = to_vec(loaded.model.forward(ints(&idx, [1, 30], &dev))).unwrap();
    assert_eq!(a, b);
    // the safetensors file uses GPT-2 names
    let bytes = std::fs::read(d.join("ckpt/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(|s| s.to_string()).collect();
    names.sort();
    for want in [
        "wte.weight",
        "wpe.weight",
        "h.0.ln_1.weight",
        "h.0.attn.c_attn.weight",
        "h.0.attn.c_proj.bias",
        "h.1.mlp.c_fc.weight",
        "h.1.mlp.c_proj.weight",
        "ln_f.bias",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "missing {want} in {names:?}"
        );
    }
    let w = st.tensor("h.0.attn.c_attn.weight").unwrap();
    assert_eq!(w.shape(), &[64, 192], "Conv1D layout [in, out]");
    // a vocabulary mismatch is refused
    let mut bad = cc.clone();
    bad.model.vocab_size += 1;
    rlhf::config::save_json(&bad, &d.join("ckpt/config.json")).unwrap();
    let err = checkpoint::load_lm(&d, &dev).err().unwrap();
    assert!(format!("{err:#}").contains("tokenizer has"), "{err:#}");
}

#[test]
fn tokenizer_round_trip_on_austen() {
    let tok = common::tok();
    let text = std::fs::read_to_string(common::assets().join("austen/persuasion.txt")).unwrap();
    let sample: String = text.chars().skip(10_000).take(20_000).collect();
    let ids = tok.encode(&sample).unwrap();
    assert!(
        ids.len() < sample.len() / 2,
        "BPE should compress: {} ids for {} chars",
        ids.len(),
        sample.len()
    );
    assert_eq!(tok.decode(&ids).unwrap(), sample);
    let with_eot = format!("Hello.{}", rlhf::data::tokenizer::EOT);
    let ids = tok.encode(&with_eot).unwrap();
    assert_eq!(*ids.last().unwrap(), tok.eot);
}

#[test]
fn positions_helper() {
    let dev = Device::flex();
    let p = positions(2, 3, 5, &dev);
    let v: Vec<i64> = p.into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
    assert_eq!(v, vec![5, 6, 7, 5, 6, 7]);
}

#[test]
fn attention_is_causal() {
    // changing token 5 must leave the logits of positions 0..5 unchanged and change position 5's
    let dev = Device::flex();
    let model = Lm::new(&tiny(60), &mut InitRng::new(0), &dev);
    let a: Vec<i64> = (0..10).map(|i| (i * 7 % 60) as i64).collect();
    let mut b = a.clone();
    b[5] = 59;
    let la = to_vec(model.forward(ints(&a, [1, 10], &dev))).unwrap();
    let lb = to_vec(model.forward(ints(&b, [1, 10], &dev))).unwrap();
    assert_eq!(
        la[..5 * 60],
        lb[..5 * 60],
        "a future token changed past logits"
    );
    assert!(la[5 * 60..6 * 60] != lb[5 * 60..6 * 60]);
}

/// `gelu_new` (x·σ(2z)) equals GPT-2's tanh GELU (burn's `gelu_approximate`) in value and
/// gradient, over the range where activations live and out in both tails.
#[test]
fn gelu_new_matches_tanh_gelu_values_and_gradients() {
    use burn::tensor::activation::gelu_approximate;
    use rlhf::model::gpt::gelu_new;
    let dev = Device::flex().autodiff();
    let xs: Vec<f32> = (0..401).map(|i| -10.0 + i as f32 * 0.05).collect();
    let n = xs.len();
    let grads_of = |f: &dyn Fn(Tensor<1>) -> Tensor<1>| {
        let x = Tensor::<1>::from_data(TensorData::new(xs.clone(), [n]), &dev).require_grad();
        let y = f(x.clone());
        let g = y.clone().sum().backward();
        (to_vec(y).unwrap(), to_vec(x.grad(&g).unwrap()).unwrap())
    };
    let (y_new, g_new) = grads_of(&|x| gelu_new(x));
    let (y_ref, g_ref) = grads_of(&|x| gelu_approximate(x));
    for i in 0..n {
        assert!(
            (y_new[i] - y_ref[i]).abs() <= 1e-5 * (1.0 + y_ref[i].abs()),
            "value at x={}: {} vs {}",
            xs[i],
            y_new[i],
            y_ref[i]
        );
        assert!(
            (g_new[i] - g_ref[i]).abs() <= 1e-5 * (1.0 + g_ref[i].abs()),
            "grad at x={}: {} vs {}",
            xs[i],
            g_new[i],
            g_ref[i]
        );
    }
    // Hand values: gelu(0) = 0, gelu'(0) = 0.5,
    // gelu(1) = 0.5·(1 + tanh(√(2/π)·1.044715)) ≈ 0.841192.
    let at = |x: f32| xs.iter().position(|&v| (v - x).abs() < 1e-4).unwrap();
    assert!(y_new[at(0.0)].abs() < 1e-6 && (g_new[at(0.0)] - 0.5).abs() < 1e-6);
    assert!(
        (y_new[at(1.0)] - 0.841192).abs() < 1e-5,
        "{}",
        y_new[at(1.0)]
    );
}

/// The reward model's last-token forward (last block at one position) against the full trunk
/// forward read at the last token: the rewards and the gradients of every kind of parameter agree,
/// and tokens after a row's end (right padding, here arbitrary ids) change nothing.
fn reward_forward_matches_full(dev: &Device) {
    use rlhf::model::RewardModel;
    let cfg = tiny(120);
    let m = RewardModel::new(&cfg, &mut InitRng::new(0), dev);
    let (b, t) = (3, 20);
    let lens = [20usize, 7, 1];
    let idx = tokens(b * t, 120, 5);
    let w = [0.7f32, -1.3, 0.4];
    let weights = Tensor::<1>::from_data(TensorData::new(w.to_vec(), [b]), dev);
    let run = |full: bool| {
        let ids = ints(&idx, [b, t], dev);
        let r = if full {
            let (h, _) = m
                .transformer
                .forward_hidden(ids, positions(b, t, 0, dev), None, None);
            let c = h.dims()[2];
            let last: Vec<i64> = lens.iter().map(|&l| l as i64 - 1).collect();
            let index = Tensor::<1, Int>::from_data(TensorData::new(last, [b]), dev)
                .reshape([b, 1, 1])
                .expand([b, 1, c]);
            m.score
                .forward(h.gather(1, index).reshape([b, c]))
                .reshape([b])
        } else {
            m.forward(ids, &lens)
        };
        let g = (r.clone() * weights.clone()).sum().backward();
        let last = m.transformer.as_gpt2().unwrap().h.len() - 1;
        fn flat<const D: usize>(x: Option<Tensor<D>>) -> Vec<f32> {
            to_vec(x.expect("every parameter gets a gradient")).unwrap()
        }
        let h = &m.transformer.as_gpt2().unwrap().h;
        let grads = vec![
            flat(m.transformer.as_gpt2().unwrap().wte.weight.val().grad(&g)),
            flat(m.transformer.as_gpt2().unwrap().wpe.weight.val().grad(&g)),
            flat(h[0].attn.c_attn.weight.val().grad(&g)),
            flat(h[last].attn.c_attn.weight.val().grad(&g)),
            flat(h[last].attn.c_attn.bias.as_ref().unwrap().val().grad(&g)),
            flat(h[last].mlp.c_fc.weight.val().grad(&g)),
            flat(m.transformer.as_gpt2().unwrap().ln_f.weight.val().grad(&g)),
            flat(m.score.weight.val().grad(&g)),
        ];
        (to_vec(r).unwrap(), grads)
    };
    let (r_full, g_full) = run(true);
    let (r_last, g_last) = run(false);
    assert!(r_full.iter().all(|v| v.is_finite()));
    let rel = common::max_rel_diff(&r_full, &r_last);
    assert!(rel <= 1e-4, "rewards {r_full:?} vs {r_last:?}");
    for (i, (a, b)) in g_full.iter().zip(&g_last).enumerate() {
        let scale = rlhf::util::compare::worst(a.iter().map(|v| v.abs()));
        assert!(
            scale > 0.0,
            "gradient {i} is all zero: the test would be vacuous"
        );
        let diff = rlhf::util::compare::worst(a.iter().zip(b).map(|(x, y)| (x - y).abs()));
        assert!(
            diff <= 1e-4 * scale,
            "gradient {i}: max diff {diff} of {scale}"
        );
    }
}

#[test]
fn reward_at_last_token_matches_full_forward_on_cpu() {
    reward_forward_matches_full(&Device::flex().autodiff());
}

#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn reward_at_last_token_matches_full_forward_on_wgpu() {
    let gpu = common::wgpu_device();
    reward_forward_matches_full(&gpu.autodiff());
}

/// The same seed samples the same tokens on every device: on the CPU the two halves of a batch
/// run on their own threads, on wgpu as one batch, each half from its own RNG either way.
#[test]
#[cfg_attr(no_wgpu_adapter, ignore = "no wgpu adapter: see tests/common/mod.rs")]
fn the_same_seed_samples_the_same_tokens_on_wgpu_and_the_cpu() {
    use rlhf::model::generate::generate_parallel;
    let gpu = common::wgpu_device();
    let cfg = tiny(300);
    let cpu = Device::flex();
    let on_cpu = Lm::new(&cfg, &mut InitRng::new(9), &cpu);
    let on_gpu = Lm::new(&cfg, &mut InitRng::new(9), &gpu);
    let prompts: Vec<Vec<u32>> = (0..7)
        .map(|i| (0..3 + i).map(|j| (j * 37 + i) as u32 % 300).collect())
        .collect();
    let sc = SampleConfig {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        max_new_tokens: 12,
    };
    let run =
        |m: &Lm, d: &Device| generate_parallel(m, &prompts, &sc, 299, &mut Rng::new(4), d).unwrap();
    let (a, b) = (run(&on_cpu, &cpu), run(&on_gpu, &gpu));
    assert_eq!(a, b);
    assert!(a.iter().map(|r| r.len()).sum::<usize>() > 40, "{a:?}");
}
