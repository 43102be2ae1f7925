//! Portable shaders: the final WGSL text of every kernel variant this program launches (each
//! work-size plan, every head size of the bundled presets, the ranking loss, dropout, LayerNorm,
//! the token log-probability, the sum of squares and the heads' split:
//! `rlhf::kernels::variants`) validated by naga and translated to SPIR-V, MSL, HLSL and GLSL
//! (`rlhf::kernels::translate`), so a shader that Metal or DX12 would reject fails here.

use rlhf::kernels::{translate::translate, variants::variants};

#[test]
fn every_kernel_variant_translates_to_spirv_msl_hlsl_and_glsl() {
    let sizes = rlhf::config::model::preset_head_sizes().unwrap();
    assert_eq!(sizes, [16, 32, 64], "the presets' head sizes");
    let all = variants(&sizes);
    let attention = all
        .iter()
        .filter(|v| v.name.starts_with("attention_"))
        .count();
    // 3 kernels × every plan of every head size, each with a GPU and a CPU plan at least
    let plans: Vec<usize> = sizes
        .iter()
        .map(|&hs| rlhf::kernels::variants::plans(hs).len())
        .collect();
    assert!(
        plans.iter().all(|&n| n >= 2),
        "plans per head size {plans:?}"
    );
    assert_eq!(
        attention,
        3 * plans.iter().sum::<usize>(),
        "plans per head size {plans:?}"
    );
    for kernel in [
        "ranking_loss",
        "dropout",
        "layer_norm_fwd",
        "layer_norm_bwd",
        "token_logprob_fwd",
        "token_logprob_bwd",
        "sum_squares",
        "qkv_heads",
    ] {
        assert!(all.iter().any(|v| v.name.starts_with(kernel)), "{kernel}");
    }
    let mut failed = Vec::new();
    for v in &all {
        match translate(&v.wgsl) {
            Ok(t) => assert!(!t.spirv.is_empty() && !t.msl.is_empty() && !t.glsl.is_empty()),
            Err(e) => failed.push(format!("{}: {e:#}", v.name)),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} variants:\n{}",
        failed.len(),
        all.len(),
        failed.join("\n")
    );
    eprintln!(
        "{} variants (head sizes {sizes:?}) → SPIR-V, MSL, HLSL, GLSL",
        all.len()
    );
}
