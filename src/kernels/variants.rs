//! Every kernel variant this program can launch, as the final WGSL text an adapter compiles
//! (loops unrolled where the launcher unrolls them, placeholders filled): what
//! `rlhf kernels --dump` writes and what `tests/commands/shaders.rs` translates with naga to
//! SPIR-V, MSL, HLSL and GLSL, so that a shader Metal or DX12 would reject fails on any machine.
//!
//! The attention kernels are specialised per head size and work-size plan (`attention::plan`);
//! the plans are all those `plan()` returns for the adapters it distinguishes (GPU or CPU, and
//! workgroup memory from the 16 KiB every adapter has up to 96 KiB). The ranking loss, dropout,
//! LayerNorm (forward, backward), the token log-probability (forward, backward) and the sum of
//! squares have one each.

use super::attention::plan::{plan, AttnPlan};

/// One kernel variant.
#[derive(Debug, Clone)]
pub struct Variant {
    /// A file name that says which: kernel, head size and plan, `.wgsl`.
    pub name: String,
    /// The WGSL text as it reaches the shader compiler.
    pub wgsl: String,
}

/// Workgroup-memory sizes that give every tile `plan()` can choose.
const SHARED: [usize; 5] = [16 << 10, 32 << 10, 48 << 10, 64 << 10, 96 << 10];

/// Every plan of head size `hs`, each once.
pub fn plans(hs: usize) -> Vec<AttnPlan> {
    let mut out: Vec<AttnPlan> = Vec::new();
    for cpu in [false, true] {
        for shared in SHARED {
            let p = plan(hs, shared, 1024, cpu);
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// The variants for these attention head sizes (each a multiple of 4 up to 128, as
/// `attention::kernel_applies` requires) plus the kernels with one variant each.
pub fn variants(head_sizes: &[usize]) -> Vec<Variant> {
    let mut out = Vec::new();
    for &hs in head_sizes {
        for p in plans(hs) {
            for (pass, wgsl) in super::attention::sources(hs, p) {
                out.push(Variant {
                    name: format!(
                        "attention_{pass}_hs{hs}_wg{}_r{}_t{}.wgsl",
                        p.wg, p.rows, p.tile
                    ),
                    wgsl,
                });
            }
        }
    }
    let (wg, wgsl) = super::ranking_loss::source();
    out.push(Variant {
        name: format!("ranking_loss_wg{wg}.wgsl"),
        wgsl,
    });
    let (wg, wgsl) = super::dropout::source();
    out.push(Variant {
        name: format!("dropout_wg{wg}.wgsl"),
        wgsl,
    });
    let (wg, wgsl) = super::attention::heads_source();
    out.push(Variant {
        name: format!("qkv_heads_wg{wg}.wgsl"),
        wgsl,
    });
    let (wg, passes) = super::layer_norm::sources();
    for (pass, wgsl) in passes {
        out.push(Variant {
            name: format!("layer_norm_{pass}_wg{wg}.wgsl"),
            wgsl,
        });
    }
    for (pass, wg, wgsl) in super::token_logprob::sources() {
        out.push(Variant {
            name: format!("token_logprob_{pass}_wg{wg}.wgsl"),
            wgsl,
        });
    }
    let (wg, wgsl) = super::sum_squares::source();
    out.push(Variant {
        name: format!("sum_squares_wg{wg}.wgsl"),
        wgsl,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_is_listed_once_and_the_text_is_final() {
        let v = variants(&[16, 64]);
        let names: std::collections::BTreeSet<_> = v.iter().map(|x| &x.name).collect();
        assert_eq!(names.len(), v.len(), "duplicate names");
        // GPU tiles 8..64 reachable at hs 16; the CPU plan (wg 8, R = 512/hs capped at 16)
        assert!(names.contains(&"attention_fwd_hs16_wg64_r1_t64.wgsl".to_string()));
        assert!(
            names.contains(&"attention_bwd_dq_hs64_wg8_r8_t32.wgsl".to_string()),
            "{names:?}"
        );
        for x in &v {
            assert!(!x.wgsl.contains("{{"), "{}: placeholder left", x.name);
            // the launcher unrolls the head-size loops up to head size 32, the rows loop at R = 1
            if x.name.starts_with("attention_") {
                let wide = x.name.contains("_hs64_");
                assert_eq!(
                    x.wgsl.contains("< HS4; "),
                    wide,
                    "{}: head-size loop",
                    x.name
                );
                let one_row = x.name.contains("_r1_");
                assert_eq!(x.wgsl.contains("< R; "), !one_row, "{}: rows loop", x.name);
            }
        }
    }
}
