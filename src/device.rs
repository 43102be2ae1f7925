//! Device selection: wgpu adapters (Vulkan, Metal, DX12) or the CPU backend (burn Flex).
//!
//! We enumerate adapters with wgpu ourselves, so `rlhf devices` shows exactly what `auto` picks
//! from, then hand the chosen adapter to burn as an existing wgpu setup. That keeps burn on its
//! WGSL compiler (needed for our hand-written kernels) whatever graphics API the adapter uses.

use anyhow::{anyhow, bail, Result};
use burn::tensor::wgpu::{wgpu, WgpuSetup};
use burn::tensor::Device;
use std::sync::Mutex;

/// What the user asked for with `--device`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
pub enum DeviceChoice {
    /// A hardware GPU through wgpu when there is one, otherwise the CPU backend.
    Auto,
    /// Any wgpu adapter, including software ones (e.g. Mesa lavapipe); hardware preferred.
    Wgpu,
    /// A wgpu adapter on Vulkan.
    Vulkan,
    /// A wgpu adapter on Metal.
    Metal,
    /// A wgpu adapter on DirectX 12.
    Dx12,
    /// The CPU backend (burn Flex), no wgpu.
    Cpu,
}

/// The device a command runs on, with a human description.
#[derive(Clone)]
pub struct Selected {
    pub device: Device,
    pub description: String,
    /// What wgpu says about the adapter (None on the CPU backend).
    pub adapter: Option<AdapterDetails>,
}

/// The adapter's identity and the limits the kernels depend on, as `rlhf doctor` prints them.
#[derive(Debug, Clone)]
pub struct AdapterDetails {
    pub name: String,
    pub device_type: wgpu::DeviceType,
    pub backend: wgpu::Backend,
    /// Driver name and version string (may be empty: not every backend reports them).
    pub driver: String,
    pub driver_info: String,
    /// Workgroup memory per workgroup, bytes (sizes the attention tiles).
    pub max_workgroup_storage: u32,
    pub max_invocations_per_workgroup: u32,
    pub max_storage_buffer_binding: u64,
    pub max_buffer: u64,
}

/// One adapter as wgpu reports it.
#[derive(Debug, Clone)]
pub struct AdapterRow {
    pub name: String,
    pub device_type: wgpu::DeviceType,
    pub backend: wgpu::Backend,
}

fn backends_for(choice: DeviceChoice) -> wgpu::Backends {
    match choice {
        DeviceChoice::Vulkan => wgpu::Backends::VULKAN,
        DeviceChoice::Metal => wgpu::Backends::METAL,
        DeviceChoice::Dx12 => wgpu::Backends::DX12,
        _ => wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12,
    }
}

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    })
}

fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn is_hardware(t: wgpu::DeviceType) -> bool {
    rank(t) <= 2
}

impl AdapterDetails {
    fn of(adapter: &wgpu::Adapter) -> Self {
        let (info, limits) = (adapter.get_info(), adapter.limits());
        Self {
            name: info.name,
            device_type: info.device_type,
            backend: info.backend,
            driver: info.driver,
            driver_info: info.driver_info,
            max_workgroup_storage: limits.max_compute_workgroup_storage_size,
            max_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_storage_buffer_binding: limits.max_storage_buffer_binding_size,
            max_buffer: limits.max_buffer_size,
        }
    }
}

/// Every adapter wgpu sees on Vulkan, Metal and DX12.
pub fn list_adapters() -> Vec<AdapterRow> {
    let inst = instance(backends_for(DeviceChoice::Wgpu));
    pollster::block_on(inst.enumerate_adapters(backends_for(DeviceChoice::Wgpu)))
        .iter()
        .map(row_of)
        .collect()
}

fn row_of(a: &wgpu::Adapter) -> AdapterRow {
    let i = a.get_info();
    AdapterRow {
        name: i.name,
        device_type: i.device_type,
        backend: i.backend,
    }
}

/// Picks the adapter for `choice` among the given rows (pure, for tests): best-ranked type first.
pub fn pick(choice: DeviceChoice, rows: &[AdapterRow]) -> Option<usize> {
    let ok = |r: &AdapterRow| match choice {
        DeviceChoice::Auto => is_hardware(r.device_type),
        DeviceChoice::Wgpu => true,
        DeviceChoice::Vulkan => r.backend == wgpu::Backend::Vulkan,
        DeviceChoice::Metal => r.backend == wgpu::Backend::Metal,
        DeviceChoice::Dx12 => r.backend == wgpu::Backend::Dx12,
        DeviceChoice::Cpu => false,
    };
    (0..rows.len())
        .filter(|&i| ok(&rows[i]))
        .min_by_key(|&i| rank(rows[i].device_type))
}

/// Every wgpu feature this program can use: what CubeCL's WGSL runtime reads from the adapter
/// to decide which types, atomics, subgroup operations and timers its kernels may use
/// (`cubecl-wgpu` `register_types` and `create_client`; its device timer writes timestamps
/// inside encoders and passes). CubeCL decides from the *adapter's*
/// features, so each of these the adapter has must also be enabled on the device, or a kernel
/// that uses it would fail to compile. Our own WGSL kernels need none.
pub const USED_FEATURES: wgpu::Features = wgpu::Features::SHADER_INT64
    .union(wgpu::Features::SHADER_F64)
    .union(wgpu::Features::SHADER_F16)
    .union(wgpu::Features::SHADER_FLOAT32_ATOMIC)
    .union(wgpu::Features::SUBGROUP)
    .union(wgpu::Features::TIMESTAMP_QUERY)
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS)
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES);

/// The features asked for when opening an adapter that reports `adapter`: the ones this program
/// uses and the adapter has, nothing else. Asking for everything the adapter reports fails on
/// current drivers: wgpu refuses a request that holds an experimental feature (mesh shaders, ray
/// queries, cooperative matrices, which today's AMD, NVIDIA, Intel, Apple and Mesa drivers
/// report) unless experimental features are enabled, and this program enables none.
pub fn requested_features(adapter: wgpu::Features) -> wgpu::Features {
    adapter.intersection(USED_FEATURES)
}

/// The error for an adapter that refused to open: what it said, which features were asked for,
/// and what to do.
fn open_error(
    row: &AdapterRow,
    asked: wgpu::Features,
    e: &wgpu::RequestDeviceError,
) -> anyhow::Error {
    anyhow!(
        "opening {} ({:?}): {e}\n(asked for the features {asked:?}); update the graphics driver, \
         try another adapter with --device (see `rlhf devices`), \
         or train on the CPU with --device cpu",
        row.name,
        row.backend,
    )
}

/// Process-wide cache: a wgpu device is registered with burn once per choice.
static CACHE: Mutex<Vec<(DeviceChoice, Selected)>> = Mutex::new(Vec::new());

/// Resolves `--device` into a burn device. `auto` without a hardware GPU falls back to the CPU
/// backend and says why on stderr.
pub fn select(choice: DeviceChoice) -> Result<Selected> {
    if let Ok(cache) = CACHE.lock() {
        if let Some((_, s)) = cache.iter().find(|(c, _)| *c == choice) {
            return Ok(s.clone());
        }
    }
    let selected = select_uncached(choice)?;
    if let Ok(mut cache) = CACHE.lock() {
        cache.push((choice, selected.clone()));
    }
    Ok(selected)
}

fn cpu() -> Selected {
    Selected {
        device: Device::flex(),
        description: "CPU (burn Flex backend)".into(),
        adapter: None,
    }
}

/// A wgpu adapter opened as a plain wgpu device, not yet handed to burn.
pub struct Opened {
    pub instance: wgpu::Instance,
    pub adapter: wgpu::Adapter,
    pub row: AdapterRow,
    pub details: AdapterDetails,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
}

/// Opens the adapter `choice` picks (not `Cpu`); `None` for `Auto` when there is no hardware
/// GPU, after saying so on stderr.
pub fn open_wgpu(choice: DeviceChoice) -> Result<Option<Opened>> {
    let backends = backends_for(choice);
    let inst = instance(backends);
    let adapters = pollster::block_on(inst.enumerate_adapters(backends));
    let rows: Vec<AdapterRow> = adapters.iter().map(row_of).collect();
    let Some(i) = pick(choice, &rows) else {
        let seen = if rows.is_empty() {
            "no wgpu adapters at all".to_string()
        } else {
            rows.iter()
                .map(|r| format!("{} ({:?}, {:?})", r.name, r.device_type, r.backend))
                .collect::<Vec<_>>()
                .join("; ")
        };
        if choice == DeviceChoice::Auto {
            eprintln!("note: no hardware GPU adapter found ({seen}); using the CPU backend");
            return Ok(None);
        }
        bail!(
            "no wgpu adapter matches --device {choice:?} ({seen}); \
             try `rlhf devices`, or --device cpu"
        );
    };
    let adapter = adapters
        .into_iter()
        .nth(i)
        .ok_or_else(|| anyhow!("adapter vanished"))?;
    let row = rows[i].clone();
    let details = AdapterDetails::of(&adapter);
    let asked = requested_features(adapter.features());
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("rlhf"),
        required_features: asked,
        required_limits: adapter.limits(),
        memory_hints: wgpu::MemoryHints::MemoryUsage,
        ..Default::default()
    }))
    .map_err(|e| open_error(&row, asked, &e))?;
    Ok(Some(Opened {
        instance: inst,
        adapter,
        row,
        details,
        device,
        queue,
    }))
}

fn select_uncached(choice: DeviceChoice) -> Result<Selected> {
    if choice == DeviceChoice::Cpu {
        return Ok(cpu());
    }
    let Some(o) = open_wgpu(choice)? else {
        return Ok(cpu());
    };
    let row = o.row;
    // the attention kernels pick their work sizes by adapter type (see kernels::attention::plan)
    crate::kernels::attention::plan::set_adapter_is_cpu(row.device_type == wgpu::DeviceType::Cpu);
    let setup = WgpuSetup {
        instance: o.instance,
        adapter: o.adapter,
        device: o.device,
        queue: o.queue,
        backend: row.backend,
    };
    let device = Device::wgpu_options().setup(setup).init().map_err(|e| {
        anyhow!(
            "starting burn on {} ({:?}): {e:?}; try --device cpu",
            row.name,
            row.backend
        )
    })?;
    Ok(Selected {
        device,
        description: format!(
            "{} ({:?}, {:?}, wgpu)",
            row.name, row.device_type, row.backend
        ),
        adapter: Some(o.details),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: wgpu::DeviceType, b: wgpu::Backend) -> AdapterRow {
        AdapterRow {
            name: "x".into(),
            device_type: t,
            backend: b,
        }
    }

    #[test]
    fn auto_prefers_hardware_and_skips_software() {
        let rows = vec![
            row(wgpu::DeviceType::Cpu, wgpu::Backend::Vulkan),
            row(wgpu::DeviceType::IntegratedGpu, wgpu::Backend::Vulkan),
            row(wgpu::DeviceType::DiscreteGpu, wgpu::Backend::Dx12),
        ];
        assert_eq!(pick(DeviceChoice::Auto, &rows), Some(2));
        assert_eq!(pick(DeviceChoice::Vulkan, &rows), Some(1));
        assert_eq!(pick(DeviceChoice::Metal, &rows), None);
        let soft = vec![row(wgpu::DeviceType::Cpu, wgpu::Backend::Vulkan)];
        assert_eq!(pick(DeviceChoice::Auto, &soft), None);
        assert_eq!(pick(DeviceChoice::Wgpu, &soft), Some(0));
    }

    #[test]
    fn an_adapter_with_every_feature_is_asked_only_for_stable_used_ones() {
        let asked = requested_features(wgpu::Features::all());
        assert_eq!(asked, USED_FEATURES);
        assert!(
            !asked.intersects(wgpu::Features::all_experimental_mask()),
            "experimental features requested: {:?}",
            asked.intersection(wgpu::Features::all_experimental_mask())
        );
        assert!(!asked.contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS));
        // an adapter with none of them is asked for nothing, one with a part for that part
        assert_eq!(
            requested_features(wgpu::Features::EXPERIMENTAL_MESH_SHADER),
            wgpu::Features::empty()
        );
        let some = wgpu::Features::SHADER_F16 | wgpu::Features::EXPERIMENTAL_RAY_QUERY;
        assert_eq!(requested_features(some), wgpu::Features::SHADER_F16);
    }
}
