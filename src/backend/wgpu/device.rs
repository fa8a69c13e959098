//! The adapter, device and queue, with the adapter's own limits, and the conversion of wgpu's
//! errors into ours: work that can fail validation runs inside error scopes, and anything
//! that escapes them is kept for the next `synchronize` instead of wgpu's default panic.
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

pub(super) fn err(msg: impl Into<String>) -> Error {
    Error::Backend { backend: "wgpu".into(), msg: msg.into() }
}

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

/// wgpu's error reports span lines (causes, shader excerpts); ours are one line.
fn one_line(e: &wgpu::Error) -> String {
    e.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

pub(super) struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Whether the device has SHADER_F16 (f16 storage and arithmetic).
    pub f16: bool,
    /// The first error no scope caught.
    uncaptured: Arc<Mutex<Option<String>>>,
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
            None => Err(err(format!(
                "WGPU_BACKEND='{}': '{}' is not one of {}",
                crate::error::one_line(&value),
                crate::error::one_line(&name),
                names.join(", ")
            ))),
        }
    })
}

/// "Vulkan, DX12"-style names of `backends`.
fn in_words(backends: wgpu::Backends) -> String {
    let names: Vec<&str> = APIS.iter().filter(|(_, b)| backends.contains(*b)).map(|(n, _)| *n).collect();
    names.join(", ")
}

impl Gpu {
    /// The preferred adapter of the APIs in `WGPU_BACKEND` (default: Vulkan, Metal, DX12).
    pub fn adapter() -> Result<wgpu::Adapter> {
        quiet_headless_device_select();
        let backends = backends_from_env()?;
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let options = wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() };
        pollster::block_on(instance.request_adapter(&options)).map_err(|e| {
            err(format!("no adapter on {} ({e}); install a Vulkan driver (mesa-vulkan-drivers gives the lavapipe CPU one)", in_words(backends)))
        })
    }

    /// A device on `adapter` with all its limits, and SHADER_F16 if it has it.
    pub fn new(adapter: wgpu::Adapter) -> Result<Gpu> {
        let info = adapter.get_info();
        let f16 = adapter.features().contains(wgpu::Features::SHADER_F16);
        let limits = adapter.limits();
        let device_desc = wgpu::DeviceDescriptor {
            label: Some("ditrt"),
            required_features: if f16 { wgpu::Features::SHADER_F16 } else { wgpu::Features::empty() },
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&device_desc))
            .map_err(|e| err(format!("{} ({:?}): requesting a device: {e}", info.name, info.backend)))?;
        let uncaptured = Arc::new(Mutex::new(None));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| one_line(&e));
        }));
        Ok(Gpu { device, queue, info, limits, f16, uncaptured })
    }

    /// Runs `f` inside validation and out-of-memory error scopes; an error either caught
    /// becomes ours, prefixed with `what`.
    pub fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        let memory = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let errors = [pollster::block_on(validation.pop()), pollster::block_on(memory.pop())];
        match errors.into_iter().flatten().next() {
            Some(e) => Err(err(format!("{what}: {}", one_line(&e)))),
            None => Ok(value),
        }
    }

    /// Blocks until all submitted work has finished; reports an error no scope caught.
    pub fn wait(&self) -> Result<()> {
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| err(format!("waiting for the device: {e}")))?;
        match self.uncaptured.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(err(e)),
            None => Ok(()),
        }
    }
}
