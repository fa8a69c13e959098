//! Device buffers: a table of raw allocations behind a mutex, host transfers on the backend's
//! stream, and the resolution of views to device addresses.
//!
//! The table lock is also the stream lock: every launch, copy, capture and graph replay holds
//! it, so launches of different threads never interleave inside a captured graph. Buffers are
//! reference-counted: a recorded graph keeps the buffers it uses alive after `free`.
use std::sync::{Arc, Mutex, MutexGuard};

use cudarc::driver::result as driver;
use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::CudaStream;

use super::device::err;
use crate::backend::table::BufferTable;
use crate::backend::{BufId, Buffers, View};
use crate::error::Result;

/// One cuMemAlloc allocation (256-byte aligned), zeroed at allocation.
pub(super) struct DeviceBuffer {
    ptr: CUdeviceptr,
    stream: Arc<CudaStream>,
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        // Launches still queued may use the buffer: let them finish first. Errors cannot be
        // reported from here; a broken context fails the next call anyway.
        let _ = self.stream.context().bind_to_thread();
        let _ = self.stream.synchronize();
        // SAFETY: allocated by cuMemAlloc in `Memory::alloc`, freed once, no work pending.
        let _ = unsafe { driver::free_sync(self.ptr) };
    }
}

pub(super) struct Memory {
    table: Mutex<BufferTable<Arc<DeviceBuffer>>>,
    stream: Arc<CudaStream>,
}

impl Memory {
    pub fn new(stream: Arc<CudaStream>) -> Memory {
        Memory { table: Mutex::default(), stream }
    }

    /// Locks the table (and with it the stream). A panic elsewhere cannot leave the table
    /// inconsistent, so a poisoned lock is taken over.
    pub fn lock(&self) -> Locked<'_> {
        Locked { table: self.table.lock().unwrap_or_else(|p| p.into_inner()) }
    }
}

impl Buffers for Memory {
    /// Call with the context bound to this thread.
    fn alloc(&self, bytes: usize) -> Result<BufId> {
        let size = bytes.max(1);
        // SAFETY: a plain allocation; zeroed on the stream before any launch can use it.
        let ptr = unsafe { driver::malloc_sync(size) }.map_err(|e| err(format!("alloc of {bytes} bytes: {e}")))?;
        let buffer = Arc::new(DeviceBuffer { ptr, stream: self.stream.clone() });
        let mut locked = self.lock();
        // SAFETY: `size` bytes at `ptr` are ours.
        unsafe { driver::memset_d8_async(ptr, 0, size, self.stream.cu_stream()) }.map_err(|e| err(format!("alloc: zeroing: {e}")))?;
        locked.table.insert(buffer, bytes).map_err(err)
    }

    /// Unknown ids are ignored: the trait gives `free` no way to fail. The buffer goes (waiting
    /// for the stream) under the lock, so never while another thread captures a graph.
    fn free(&self, buf: BufId) {
        self.lock().table.remove(buf);
    }

    /// Copies on the stream, after every launch queued before it (call with the context bound).
    fn write(&self, dst: View, bytes: &[u8]) -> Result<()> {
        if dst.len.checked_mul(dst.dtype.size()) != Some(bytes.len()) {
            return Err(err(format!("write: {} bytes given for a view of {} {}", bytes.len(), dst.len, dst.dtype)));
        }
        let locked = self.lock();
        let ptr = locked.ptr("write", "dst", &dst)?;
        if bytes.is_empty() {
            return Ok(());
        }
        // SAFETY: `ptr` addresses dst.bytes() bytes of a live buffer. From pageable memory the
        // call returns once `bytes` is staged, so the slice may go right after.
        unsafe { driver::memcpy_htod_async(ptr, bytes, self.stream.cu_stream()) }.map_err(|e| err(format!("write: {e}")))
    }

    /// Copies back after every launch queued before it (call with the context bound).
    fn read(&self, src: View) -> Result<Vec<u8>> {
        let locked = self.lock();
        let ptr = locked.ptr("read", "src", &src)?;
        let mut bytes = vec![0u8; src.bytes()];
        if !bytes.is_empty() {
            // SAFETY: `ptr` addresses src.bytes() bytes of a live buffer; to pageable memory the
            // call returns once the copy is complete.
            unsafe { driver::memcpy_dtoh_async(&mut bytes, ptr, self.stream.cu_stream()) }.map_err(|e| err(format!("read: {e}")))?;
        }
        self.stream.synchronize().map_err(|e| err(format!("read: {e}")))?;
        Ok(bytes)
    }
}

/// The locked table.
pub(super) struct Locked<'m> {
    table: MutexGuard<'m, BufferTable<Arc<DeviceBuffer>>>,
}

impl Locked<'_> {
    /// Device address of the first element of `view`, checked (`BufferTable::get`).
    pub fn ptr(&self, op: &str, field: &str, view: &View) -> Result<CUdeviceptr> {
        Ok(self.table.get(op, field, view).map_err(err)?.ptr + view.offset as CUdeviceptr)
    }

    /// The buffers behind `views` (checked already), for a recorded graph to keep alive.
    pub fn keep_alive(&self, views: &[View]) -> Vec<Arc<DeviceBuffer>> {
        let mut kept: Vec<Arc<DeviceBuffer>> = Vec::new();
        for buffer in views.iter().filter_map(|v| self.table.get("compile", "view", v).ok()) {
            if !kept.iter().any(|k| Arc::ptr_eq(k, buffer)) {
                kept.push(buffer.clone());
            }
        }
        kept
    }
}
