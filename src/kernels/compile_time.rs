//! How long an adapter's driver takes to compile each kernel variant: the shader module and
//! compute pipeline created from the variant's final WGSL on a plain wgpu device, then one
//! workgroup dispatched and waited for, since some drivers (Mesa's lavapipe) compile a pipeline
//! only when it first runs. What `rlhf kernels --compile-times` prints: compile time is a
//! portability property like validity, because a shader that takes minutes to compile on one
//! driver stalls the first step of every run there.
//!
//! The module is created with the runtime checks CubeCL uses ([`CUBECL_CHECKS`]), so what is
//! timed is the shader the program runs. The buffers bound are zero-filled and small: the kernels
//! read their sizes from them, so with zeros they do (almost) nothing.

use super::variants::Variant;
use anyhow::{anyhow, Context, Result};
use std::time::{Duration, Instant};
use wgpu::util::DeviceExt;

/// Bytes of each zero-filled buffer bound to a variant's bindings.
const BUFFER_BYTES: usize = 4096;

/// The runtime checks naga adds to a WGSL kernel that CubeCL launches (`cubecl-wgpu`'s
/// `create_module`, for a kernel launched checked as ours are): no bounds checks, loops bounded,
/// and no zeroing of workgroup memory (below). They change the compile time a lot: with bounds
/// checks, the attention variants compiled up to 20× faster on Mesa 25's lavapipe than they do
/// as launched, so a measurement with wgpu's default checks would not be of the program's kernels.
const CUBECL_CHECKS: wgpu::ShaderRuntimeChecks = wgpu::ShaderRuntimeChecks {
    bounds_checks: false,
    force_loop_bounding: true,
    ..wgpu::ShaderRuntimeChecks::unchecked()
};

/// The compile (and first-run) time of one variant.
#[derive(Debug, Clone)]
pub struct CompileTime {
    pub name: String,
    pub time: Duration,
}

/// The `@binding` numbers of group 0's storage buffers, read from the WGSL by naga.
fn bindings(wgsl: &str) -> Result<Vec<u32>> {
    let mut out: Vec<u32> = super::translate::parse(wgsl)?
        .global_variables
        .iter()
        .filter_map(|(_, g)| g.binding.as_ref())
        .filter(|b| b.group == 0)
        .map(|b| b.binding)
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// Compiles `v` on `device` and runs one workgroup; the time from the shader module's creation
/// until the queue is idle again.
pub fn compile_one(device: &wgpu::Device, queue: &wgpu::Queue, v: &Variant) -> Result<CompileTime> {
    let slots = bindings(&v.wgsl).with_context(|| v.name.clone())?;
    let zeros = vec![0u8; BUFFER_BYTES];
    let buffers: Vec<wgpu::Buffer> = slots
        .iter()
        .map(|_| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: &zeros,
                usage: wgpu::BufferUsages::STORAGE,
            })
        })
        .collect();
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let start = Instant::now();
    // SAFETY: the checks left out are those CubeCL leaves out for every kernel it launches
    // (`CUBECL_CHECKS`); the kernels index their buffers within the sizes they read from `info`,
    // and the zero-filled buffers here make every size zero.
    let module = unsafe {
        device.create_shader_module_trusted(
            wgpu::ShaderModuleDescriptor {
                label: Some(&v.name),
                source: wgpu::ShaderSource::Wgsl(v.wgsl.as_str().into()),
            },
            CUBECL_CHECKS,
        )
    };
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(&v.name),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: wgpu::PipelineCompilationOptions {
            zero_initialize_workgroup_memory: false,
            ..Default::default()
        },
        cache: None,
    });
    let entries: Vec<wgpu::BindGroupEntry> = slots
        .iter()
        .zip(&buffers)
        .map(|(&binding, b)| wgpu::BindGroupEntry {
            binding,
            resource: b.as_entire_binding(),
        })
        .collect();
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }
    queue.submit([encoder.finish()]);
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| anyhow!("{}: waiting for the device: {e}", v.name))?;
    let time = start.elapsed();
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(anyhow!("{}: the driver refused it: {e}", v.name));
    }
    Ok(CompileTime {
        name: v.name.clone(),
        time,
    })
}
