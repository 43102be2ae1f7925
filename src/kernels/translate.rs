//! Portable shaders: a kernel variant's final WGSL parsed and validated by naga — the version
//! wgpu 30 uses, so the rules wgpu applies at run time on every backend — and translated to each
//! language a wgpu backend hands its driver: SPIR-V (Vulkan), MSL (Metal), HLSL (DX12) and GLSL
//! (GL). The SPIR-V is read back by naga's SPIR-V front end and validated again. A shader that
//! only Metal or DX12 would reject so fails on a machine that has neither
//! (`tests/commands/shaders.rs`), and `rlhf kernels --dump` writes the translations for other
//! tools.

use anyhow::{anyhow, ensure, Context, Result};
use naga::back::{glsl, hlsl, msl, spv};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use naga::{Module, ShaderStage};

/// A variant in every target language.
pub struct Translations {
    pub spirv: Vec<u8>,
    pub msl: String,
    /// HLSL for shader model 6.0 (DXC); 5.1 (FXC) is translated and checked too.
    pub hlsl: String,
    /// GLSL ES 3.10, the first version with compute shaders.
    pub glsl: String,
}

fn validate(module: &Module) -> Result<ModuleInfo> {
    Validator::new(ValidationFlags::all(), Capabilities::default())
        .validate(module)
        .map_err(|e| anyhow!("naga validation: {e:?}"))
}

fn to_spirv(module: &Module, info: &ModuleInfo) -> Result<Vec<u8>> {
    let words = spv::write_vec(module, info, &spv::Options::default(), None)?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let back = naga::front::spv::parse_u8_slice(&bytes, &naga::front::spv::Options::default())
        .map_err(|e| anyhow!("reading the SPIR-V back: {e:?}"))?;
    validate(&back).context("the SPIR-V read back")?;
    Ok(bytes)
}

fn to_msl(module: &Module, info: &ModuleInfo) -> Result<String> {
    let options = msl::Options {
        // Metal 2.4: macOS 12 and every Apple-silicon Mac
        lang_version: (2, 4),
        ..Default::default()
    };
    let (text, _) = msl::write_string(module, info, &options, &msl::PipelineOptions::default())?;
    ensure!(
        text.contains("kernel void"),
        "no compute entry point in the MSL"
    );
    Ok(text)
}

fn to_hlsl(module: &Module, info: &ModuleInfo) -> Result<String> {
    let mut last = String::new();
    for shader_model in [hlsl::ShaderModel::V5_1, hlsl::ShaderModel::V6_0] {
        let options = hlsl::Options {
            shader_model,
            ..Default::default()
        };
        let mut text = String::new();
        hlsl::Writer::new(&mut text, &options, &hlsl::PipelineOptions::default())
            .write(module, info, None)
            .with_context(|| format!("shader model {shader_model:?}"))?;
        ensure!(
            text.contains("[numthreads("),
            "no compute entry point in the HLSL"
        );
        last = text;
    }
    Ok(last)
}

fn to_glsl(module: &Module, info: &ModuleInfo) -> Result<String> {
    let options = glsl::Options {
        version: glsl::Version::new_gles(310),
        ..Default::default()
    };
    let pipeline = glsl::PipelineOptions {
        shader_stage: ShaderStage::Compute,
        entry_point: "main".into(),
        multiview: None,
    };
    let policies = naga::proc::BoundsCheckPolicies::default();
    let mut text = String::new();
    glsl::Writer::new(&mut text, module, info, &options, &pipeline, policies)?.write()?;
    // not read back: naga's GLSL front end reads desktop GLSL 4.40+ only
    ensure!(
        text.contains("layout(local_size_x"),
        "no compute entry point in the GLSL"
    );
    Ok(text)
}

/// Parses one variant's WGSL; the error shows naga's message with the offending source line.
pub fn parse(wgsl: &str) -> Result<Module> {
    naga::front::wgsl::parse_str(wgsl).map_err(|e| anyhow!("WGSL: {}", e.emit_to_string(wgsl)))
}

/// Parses, validates and translates one variant's WGSL; the error names the target that failed.
pub fn translate(wgsl: &str) -> Result<Translations> {
    let module = parse(wgsl)?;
    let info = validate(&module).context("WGSL")?;
    Ok(Translations {
        spirv: to_spirv(&module, &info).context("SPIR-V (Vulkan)")?,
        msl: to_msl(&module, &info).context("MSL (Metal)")?,
        hlsl: to_hlsl(&module, &info).context("HLSL (DX12)")?,
        glsl: to_glsl(&module, &info).context("GLSL ES 3.10 (GL)")?,
    })
}
