//! The device and queue, with the adapter's own limits, and the conversion of wgpu's
//! errors into ours: work that can fail validation runs inside error scopes, and anything
//! that escapes them is kept for the next `synchronize` instead of wgpu's default panic.
use std::sync::{Arc, Mutex};

use super::Lowered;
use crate::error::{Error, Result};

pub(super) fn err(msg: impl Into<String>) -> Error {
    Error::Backend { backend: "wgpu".into(), msg: msg.into() }
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
    /// Whether the device has SHADER_F16 (native f16 storage; without it f16 is packed in u32).
    pub f16: bool,
    /// The first error no scope caught.
    uncaptured: Arc<Mutex<Option<String>>>,
}

impl Gpu {
    /// A device on `adapter` with all its limits, and SHADER_F16 if it has it, less what
    /// `lowered` takes away (the device is requested so, and wgpu enforces it).
    pub fn new(adapter: wgpu::Adapter, lowered: Lowered) -> Result<Gpu> {
        let info = adapter.get_info();
        let f16 = adapter.features().contains(wgpu::Features::SHADER_F16) && !lowered.no_f16;
        let limits = lowered.apply(adapter.limits());
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
