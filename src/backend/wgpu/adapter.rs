//! Which adapter the wgpu backend runs on: the graphics APIs of `WGPU_BACKEND`, then the
//! adapter named by `WGPU_ADAPTER_NAME` or else the one wgpu prefers; on an instance whose
//! memory budget makes an allocation past it fail rather than page.
use super::device::err;
use crate::error::{one_line, Result};

/// Resource creation fails beyond this percentage of the memory budget the driver reports
/// (D3D12, and Vulkan with VK_EXT_memory_budget): an over-budget allocation is an error, not a
/// run that pages to host memory. Device loss is left to the driver.
const MEMORY_BUDGET: wgpu::MemoryBudgetThresholds = wgpu::MemoryBudgetThresholds { for_resource_creation: Some(95), for_device_loss: None };

/// DX12 compiles WGSL (through HLSL) with DXC where `dxcompiler.dll` loads (from the
/// executable's folder or the DLL search path; DXC is what gives an adapter SHADER_F16), else
/// with FXC, which has no f16: then f16 storage is packed in u32 (`packed`). wgpu's
/// `static-dxc` feature, which would link DXC in, downloads a binary at build time and is off.
/// Untested on Windows.
const DX12_COMPILER: wgpu::Dx12Compiler = wgpu::Dx12Compiler::Auto;

/// Mesa's device-select layer (installed with lavapipe) asks Wayland for the display's GPU
/// and, on a headless machine (no XDG_RUNTIME_DIR), prints "error: XDG_RUNTIME_DIR is invalid"
/// twice. It only orders GPUs for a display, so without a session, and unless the user
/// configured it, it is switched off, once, before the first instance enumerates devices.
fn quiet_headless_device_select() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let configured = ["XDG_RUNTIME_DIR", "NODEVICE_SELECT", "MESA_VK_DEVICE_SELECT"].iter().any(|v| std::env::var_os(v).is_some());
        if !configured {
            std::env::set_var("NODEVICE_SELECT", "1");
        }
    });
}

/// The graphics APIs ditrt looks on, by the names `WGPU_BACKEND` takes. Not GL: lavapipe's GL
/// twin has no f16, and wgpu's GL compute is the least tested.
const APIS: &[(&str, wgpu::Backends)] = &[("vulkan", wgpu::Backends::VULKAN), ("metal", wgpu::Backends::METAL), ("dx12", wgpu::Backends::DX12)];

/// The APIs named in `WGPU_BACKEND` (comma-separated, any case), all of them when it is unset;
/// an unknown name, GL among them, is an error naming the variable.
fn backends_from_env() -> Result<wgpu::Backends> {
    let Ok(value) = std::env::var("WGPU_BACKEND") else {
        return Ok(APIS.iter().fold(wgpu::Backends::empty(), |all, (_, b)| all | *b));
    };
    let names: Vec<&str> = APIS.iter().map(|(n, _)| *n).collect();
    value.split(',').map(|n| n.trim().to_ascii_lowercase()).try_fold(wgpu::Backends::empty(), |all, name| {
        match APIS.iter().find(|(n, _)| *n == name) {
            Some((_, b)) => Ok(all | *b),
            None => Err(err(format!("WGPU_BACKEND='{}': '{}' is not one of {}", one_line(&value), one_line(&name), names.join(", ")))),
        }
    })
}

/// "Vulkan, DX12"-style names of `backends`.
fn in_words(backends: wgpu::Backends) -> String {
    let names: Vec<&str> = APIS.iter().filter(|(_, b)| backends.contains(*b)).map(|(n, _)| *n).collect();
    names.join(", ")
}

/// The adapter named by `WGPU_ADAPTER_NAME` (`named`), else the one wgpu prefers.
pub(super) fn choose() -> Result<wgpu::Adapter> {
    if let Ok(part) = std::env::var("WGPU_ADAPTER_NAME") {
        return named(&part);
    }
    let (instance, backends) = instance()?;
    let options = wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() };
    pollster::block_on(instance.request_adapter(&options)).map_err(|e| {
        err(format!("no adapter on {} ({e}); install a Vulkan driver (mesa-vulkan-drivers gives the lavapipe CPU one)", in_words(backends)))
    })
}

/// The first adapter whose name contains `part`, ignoring case (as wgpu's own examples read
/// `WGPU_ADAPTER_NAME`); else an error listing the adapters there are.
pub(super) fn named(part: &str) -> Result<wgpu::Adapter> {
    let (instance, backends) = instance()?;
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    let needle = part.to_lowercase();
    if let Some(i) = adapters.iter().position(|a| a.get_info().name.to_lowercase().contains(&needle)) {
        return Ok(adapters.into_iter().nth(i).expect("found above"));
    }
    let found: Vec<String> = adapters.iter().map(|a| a.get_info()).map(|info| format!("'{}' ({:?})", one_line(&info.name), info.backend)).collect();
    let found = if found.is_empty() { "none".to_string() } else { found.join(", ") };
    Err(err(format!("WGPU_ADAPTER_NAME='{}' is part of no adapter's name on {} (found: {found})", one_line(part), in_words(backends))))
}

/// An instance on the APIs of `WGPU_BACKEND` (default: Vulkan, Metal, DX12), with the memory
/// budget and DX12's shader compiler, and those APIs.
fn instance() -> Result<(wgpu::Instance, wgpu::Backends)> {
    quiet_headless_device_select();
    let backends = backends_from_env()?;
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    desc.memory_budget_thresholds = MEMORY_BUDGET;
    desc.backend_options.dx12.shader_compiler = DX12_COMPILER;
    Ok((wgpu::Instance::new(desc), backends))
}
