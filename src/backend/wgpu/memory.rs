//! Buffers of the wgpu backend: a table of device buffers, host transfers, and the resolution
//! of views to bindable buffer ranges.
//!
//! wgpu copies in 4-byte units: a buffer's size is rounded up to 4, and a write whose ends are
//! not 4-aligned (odd f16 views) reads the 4-aligned span around it back, patches it and writes
//! it whole. A binding must start at a multiple of the adapter's storage offset alignment, so a
//! view is bound from its offset rounded down to that, and the shader is told where the view
//! starts inside the binding (an element offset).
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use super::device::{err, Gpu};
use crate::backend::table::BufferTable;
use crate::backend::{view_checks, BufId, Buffers, View};
use crate::error::Result;

const COPY_ALIGN: usize = wgpu::COPY_BUFFER_ALIGNMENT as usize;

/// Size of the buffer bound where an optional view is absent (never read).
const ABSENT_BYTES: u64 = 256;

fn align_down(n: usize, to: usize) -> usize {
    n / to * to
}

fn align_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// A byte range of a buffer, bound to one storage binding.
#[derive(Clone)]
pub(super) struct Binding {
    pub buffer: wgpu::Buffer,
    pub offset: u64,
    pub size: u64,
}

pub(super) struct Memory {
    gpu: Arc<Gpu>,
    /// Buffers with the sizes asked for (each is rounded up to 4 bytes).
    table: Mutex<BufferTable<wgpu::Buffer>>,
    absent: wgpu::Buffer,
}

impl Memory {
    pub fn new(gpu: Arc<Gpu>) -> Self {
        let absent = storage_buffer(&gpu, ABSENT_BYTES, "absent view");
        Memory { gpu, table: Mutex::default(), absent }
    }

    /// Locks the table, e.g. to resolve the views of many dispatches at once.
    pub fn lock(&self) -> Resolver<'_> {
        Resolver { table: self.table.lock().unwrap_or_else(|p| p.into_inner()), memory: self }
    }
}

impl Buffers for Memory {
    fn alloc(&self, bytes: usize) -> Result<BufId> {
        let size = buffer_size(&self.gpu.limits, bytes)?;
        let buffer = self.gpu.scoped(&format!("alloc of {bytes} bytes"), || storage_buffer(&self.gpu, size, "ditrt buffer"))?;
        self.lock().table.insert(buffer, bytes).map_err(err)
    }

    /// Recorded graphs keep the buffers they bind alive until they are dropped.
    fn free(&self, buf: BufId) {
        self.lock().table.remove(buf);
    }

    fn write(&self, dst: View, bytes: &[u8]) -> Result<()> {
        view_checks::write_len(&dst, bytes.len()).map_err(err)?;
        let buffer = self.lock().locate("write", "dst", &dst)?.clone();
        if bytes.is_empty() {
            return Ok(());
        }
        let (start, end) = (align_down(dst.offset, COPY_ALIGN), align_up(dst.offset + bytes.len(), COPY_ALIGN));
        if start == dst.offset && end == dst.offset + bytes.len() {
            self.gpu.queue.write_buffer(&buffer, start as u64, bytes);
        } else {
            let mut span = self.read_span(&buffer, start, end - start)?;
            span[dst.offset - start..][..bytes.len()].copy_from_slice(bytes);
            self.gpu.queue.write_buffer(&buffer, start as u64, &span);
        }
        Ok(())
    }

    fn read(&self, src: View) -> Result<Vec<u8>> {
        let buffer = self.lock().locate("read", "src", &src)?.clone();
        let (start, end) = (align_down(src.offset, COPY_ALIGN), align_up(src.offset + src.bytes(), COPY_ALIGN));
        if start == end {
            return Ok(Vec::new());
        }
        let span = self.read_span(&buffer, start, end - start)?;
        Ok(span[src.offset - start..][..src.bytes()].to_vec())
    }
}

impl Memory {
    /// `len` bytes from byte `start` of `buffer` (both multiples of 4), after all work
    /// submitted so far: copied to a mappable buffer, mapped, waited for.
    fn read_span(&self, buffer: &wgpu::Buffer, start: usize, len: usize) -> Result<Vec<u8>> {
        let gpu = &self.gpu;
        let staging = gpu.scoped("read", || {
            let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("read staging"),
                size: len as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(buffer, start as u64, &staging, 0, len as u64);
            gpu.queue.submit([encoder.finish()]);
            staging
        })?;
        let (sender, receiver) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |result| {
            // The receiver waits below; it cannot be gone.
            let _ = sender.send(result);
        });
        gpu.wait()?;
        receiver.recv().map_err(|_| err("read: the device dropped the mapping request"))?.map_err(|e| err(format!("read: mapping failed: {e}")))?;
        let bytes = staging.get_mapped_range(..).map_err(|e| err(format!("read: {e}")))?.to_vec();
        staging.unmap();
        Ok(bytes)
    }
}

/// The size of a buffer of `bytes` bytes (rounded up to 4), or an error beyond the adapter's
/// largest.
pub(super) fn buffer_size(limits: &wgpu::Limits, bytes: usize) -> Result<u64> {
    let size = align_up(bytes.max(1), COPY_ALIGN) as u64;
    let max = limits.max_buffer_size;
    match size <= max {
        true => Ok(size),
        false => Err(err(format!("alloc: {bytes} bytes is more than the adapter's largest buffer ({max} bytes)"))),
    }
}

/// The byte range (offset, size) of its buffer that binds the non-empty `view`, and the index
/// of the view's first element in it; an error beyond the adapter's binding limit.
pub(super) fn binding_span(limits: &wgpu::Limits, op: &str, field: &str, view: &View) -> Result<(u64, u64, u32)> {
    let start = align_down(view.offset, limits.min_storage_buffer_offset_alignment as usize);
    let end = align_up(view.offset + view.bytes(), COPY_ALIGN);
    let size = (end - start) as u64;
    if size > limits.max_storage_buffer_binding_size {
        return Err(err(format!(
            "{op}: {field}: a view of {} bytes is larger than the adapter's storage binding limit of {} bytes",
            view.bytes(),
            limits.max_storage_buffer_binding_size
        )));
    }
    // Below the offset alignment (at most 256 bytes), so it fits any integer.
    let first = ((view.offset - start) / view.dtype.size()) as u32;
    Ok((start as u64, size, first))
}

pub(super) fn storage_buffer(gpu: &Gpu, size: u64, label: &str) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// The locked buffer table.
pub(super) struct Resolver<'m> {
    table: MutexGuard<'m, BufferTable<wgpu::Buffer>>,
    memory: &'m Memory,
}

impl Resolver<'_> {
    /// The buffer of `view`, checked (`BufferTable::get`).
    pub fn locate(&self, op: &str, field: &str, view: &View) -> Result<&wgpu::Buffer> {
        self.table.get(op, field, view).map_err(err)
    }

    /// The binding that holds `view`, and the index of the view's first element in it.
    pub fn bind(&self, op: &str, field: &str, view: &View) -> Result<(Binding, u32)> {
        let buffer = self.locate(op, field, view)?;
        if view.len == 0 {
            return Ok((self.absent(), 0));
        }
        let (offset, size, first) = binding_span(&self.memory.gpu.limits, op, field, view)?;
        Ok((Binding { buffer: buffer.clone(), offset, size }, first))
    }

    /// What an absent optional view is bound to.
    pub fn absent(&self) -> Binding {
        Binding { buffer: self.memory.absent.clone(), offset: 0, size: ABSENT_BYTES }
    }
}
