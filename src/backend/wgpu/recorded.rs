//! Dispatches made ready to replay: views bound to buffer ranges, all parameters in one
//! uniform buffer, one bind group per dispatch, pipelines fetched. Built once (per launch, or
//! per graph by `compile`); `submit` then records every dispatch into one command buffer and
//! allocates no device object.
use std::sync::Arc;

use wgpu::util::DeviceExt;

use super::device::{err, Gpu};
use super::dispatch::{Dispatch, Source};
use super::memory::{binding_span, buffer_size, storage_buffer, Binding, Memory};
use super::shaders::{Pipeline, Pipelines};
use crate::backend::{Backend, CompiledOps};
use crate::error::Result;

/// Parameter blocks are padded to this (uniform structs are sized in 16-byte units).
const PARAM_ALIGN: usize = 16;

struct Step {
    pipeline: Arc<Pipeline>,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

pub(super) struct Recorded {
    gpu: Arc<Gpu>,
    steps: Vec<Step>,
}

impl Recorded {
    pub fn new(gpu: &Arc<Gpu>, memory: &Memory, pipelines: &Pipelines, mut dispatches: Vec<Dispatch>) -> Result<Recorded> {
        if dispatches.is_empty() {
            return Ok(Recorded { gpu: gpu.clone(), steps: Vec::new() });
        }
        let grids = dispatches.iter().map(|d| check(gpu, d)).collect::<Result<Vec<_>>>()?;
        let scratch = scratch_buffer(gpu, &dispatches)?;
        let bindings = bind_views(gpu, memory, scratch.as_ref(), &mut dispatches)?;
        let block = dispatches.iter().map(|d| d.params.len() * 4).max().unwrap_or(0).next_multiple_of(PARAM_ALIGN);
        let stride = block.next_multiple_of(gpu.limits.min_uniform_buffer_offset_alignment as usize);
        let mut param_bytes = vec![0u8; stride * dispatches.len()];
        for (d, chunk) in dispatches.iter().zip(param_bytes.chunks_mut(stride)) {
            chunk[..d.params.len() * 4].copy_from_slice(bytemuck::cast_slice(&d.params));
        }
        let mut steps = Vec::with_capacity(dispatches.len());
        let params = gpu.scoped("parameters", || {
            gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("dispatch parameters"),
                contents: &param_bytes,
                usage: wgpu::BufferUsages::UNIFORM,
            })
        })?;
        for (i, ((d, bound), workgroups)) in dispatches.iter().zip(&bindings).zip(grids).enumerate() {
            if workgroups.contains(&0) {
                continue;
            }
            let pipeline = pipelines.get(gpu, d.shader, &d.variant, &d.consts)?;
            let param_binding = wgpu::BufferBinding { buffer: &params, offset: (i * stride) as u64, size: wgpu::BufferSize::new(block as u64) };
            let entries: Vec<wgpu::BindGroupEntry> = std::iter::once(wgpu::BindingResource::Buffer(param_binding))
                .chain(bound.iter().map(|b| {
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: &b.buffer, offset: b.offset, size: wgpu::BufferSize::new(b.size) })
                }))
                .enumerate()
                .map(|(binding, resource)| wgpu::BindGroupEntry { binding: binding as u32, resource })
                .collect();
            let bind_group = gpu.scoped(&format!("binding {}", d.shader.name), || {
                gpu.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(d.shader.name), layout: &pipeline.layout, entries: &entries })
            })?;
            steps.push(Step { pipeline, bind_group, workgroups });
        }
        Ok(Recorded { gpu: gpu.clone(), steps })
    }

    /// Records every dispatch into one compute pass of one command buffer and submits it.
    pub fn submit(&self) -> Result<()> {
        if self.steps.is_empty() {
            return Ok(());
        }
        self.gpu.scoped("submitting", || {
            let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                for step in &self.steps {
                    pass.set_pipeline(&step.pipeline.pipeline);
                    pass.set_bind_group(0, &step.bind_group, &[]);
                    let [x, y, z] = step.workgroups;
                    pass.dispatch_workgroups(x, y, z);
                }
            }
            self.gpu.queue.submit([encoder.finish()]);
        })
    }
}

impl CompiledOps for Recorded {
    fn run(&self, _backend: &dyn Backend) -> Result<()> {
        self.submit()
    }
}

/// What recording `d` would refuse, found without a device object (`WgpuBackend::check_placed`
/// runs it before a graph's buffers exist): a view beyond the binding limit, a grid beyond the
/// workgroups per dimension, scratch beyond either. Its workgroups otherwise.
pub(super) fn check(gpu: &Gpu, d: &Dispatch) -> Result<[u32; 3]> {
    let name = d.shader.name;
    for slot in &d.slots {
        match &slot.source {
            Source::View(view) if view.len > 0 => drop(binding_span(&gpu.limits, name, slot.field, view)?),
            Source::Scratch(words) => {
                let bytes = buffer_size(&gpu.limits, words * 4)?;
                let limit = gpu.limits.max_storage_buffer_binding_size;
                if bytes > limit {
                    return Err(err(format!(
                        "{name}: {field}: {bytes} bytes of scratch exceed the adapter's storage binding limit of {limit} bytes",
                        field = slot.field
                    )));
                }
            }
            _ => {}
        }
    }
    d.grid.counts(name, gpu.limits.max_compute_workgroups_per_dimension)
}

/// Binds every slot of every dispatch (under one lock of the buffer table) and writes each
/// view's element offset into its parameter.
fn bind_views(gpu: &Gpu, memory: &Memory, scratch: Option<&wgpu::Buffer>, dispatches: &mut [Dispatch]) -> Result<Vec<Vec<Binding>>> {
    let resolver = memory.lock();
    let mut all = Vec::with_capacity(dispatches.len());
    for d in dispatches {
        let name = d.shader.name;
        for (field, whole) in &d.wholes {
            resolver.locate(name, field, whole)?;
        }
        let mut bound = Vec::with_capacity(d.slots.len());
        for slot in &d.slots {
            let (binding, first) = match &slot.source {
                Source::View(view) => resolver.bind(name, slot.field, view)?,
                Source::Data(values) if !values.is_empty() => (constant(gpu, values)?, 0),
                Source::Scratch(words) => match scratch {
                    Some(buffer) if *words > 0 => (Binding { buffer: buffer.clone(), offset: 0, size: (words * 4) as u64 }, 0),
                    _ => (resolver.absent(), 0),
                },
                Source::Data(_) | Source::Absent => (resolver.absent(), 0),
            };
            d.params[slot.offset_param] = first;
            bound.push(binding);
        }
        all.push(bound);
    }
    Ok(all)
}

/// The scratch buffer of `dispatches` (`Source::Scratch`): as large as the most any of them
/// asks for, none where none does; owned by the bind groups that use it.
fn scratch_buffer(gpu: &Gpu, dispatches: &[Dispatch]) -> Result<Option<wgpu::Buffer>> {
    let words = dispatches.iter().flat_map(|d| &d.slots).filter_map(|s| if let Source::Scratch(w) = s.source { Some(w) } else { None }).max();
    match words.filter(|&w| w > 0) {
        Some(words) => {
            let size = buffer_size(&gpu.limits, words * 4)?;
            gpu.scoped("scratch", || storage_buffer(gpu, size, "scratch")).map(Some)
        }
        None => Ok(None),
    }
}

/// A storage buffer holding `values`, owned by the bind group that uses it.
fn constant(gpu: &Gpu, values: &[f32]) -> Result<Binding> {
    let buffer = gpu.scoped("constant data", || {
        gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("constant data"),
            contents: bytemuck::cast_slice(values),
            usage: wgpu::BufferUsages::STORAGE,
        })
    })?;
    Ok(Binding { size: buffer.size(), buffer, offset: 0 })
}
