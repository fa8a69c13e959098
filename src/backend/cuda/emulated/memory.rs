//! The emulated device's memory: host allocations, 256-byte aligned and zeroed as cuMemAlloc's
//! (src/backend/cuda/memory.rs), in a table behind a mutex that each launch holds.
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::sync::{Mutex, MutexGuard};

use cudarc::driver::sys::CUdeviceptr;

use super::super::device::err;
use super::ffi::EmuRange;
use crate::backend::table::BufferTable;
use crate::backend::{view_checks, BufId, Buffers, View};
use crate::error::Result;

/// cuMemAlloc's alignment: the encoders pick kernels by the alignment of addresses.
const ALIGN: usize = 256;

pub(super) struct HostBuffer {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the buffer exclusively owns its allocation, touched only under the table lock.
unsafe impl Send for HostBuffer {}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `alloc` with this layout, freed once.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

#[derive(Default)]
pub(super) struct Memory {
    table: Mutex<BufferTable<HostBuffer>>,
}

impl Memory {
    pub fn lock(&self) -> Locked<'_> {
        Locked { table: self.table.lock().unwrap_or_else(|p| p.into_inner()) }
    }
}

impl Buffers for Memory {
    fn alloc(&self, bytes: usize) -> Result<BufId> {
        let layout = Layout::from_size_align(bytes.max(1), ALIGN).map_err(|_| err(format!("alloc: {bytes} bytes is too large")))?;
        // SAFETY: a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(err(format!("alloc: out of memory allocating {bytes} bytes")));
        }
        self.lock().table.insert(HostBuffer { ptr, layout }, bytes).map_err(err)
    }

    fn free(&self, buf: BufId) {
        self.lock().table.remove(buf);
    }

    fn write(&self, dst: View, bytes: &[u8]) -> Result<()> {
        view_checks::write_len(&dst, bytes.len()).map_err(err)?;
        let locked = self.lock();
        let ptr = locked.ptr("write", "dst", &dst)?;
        // SAFETY: `ptr` addresses dst.bytes() bytes of a live buffer, which no slice aliases.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr as *mut u8, bytes.len()) };
        Ok(())
    }

    fn read(&self, src: View) -> Result<Vec<u8>> {
        let locked = self.lock();
        let ptr = locked.ptr("read", "src", &src)?;
        // SAFETY: `ptr` addresses src.bytes() bytes of a live buffer.
        Ok(unsafe { std::slice::from_raw_parts(ptr as *const u8, src.bytes()) }.to_vec())
    }
}

pub(super) struct Locked<'m> {
    table: MutexGuard<'m, BufferTable<HostBuffer>>,
}

impl Locked<'_> {
    /// The host address of the first element of `view`, checked (`BufferTable::get`).
    pub fn ptr(&self, op: &str, field: &str, view: &View) -> Result<CUdeviceptr> {
        Ok(self.table.get(op, field, view).map_err(err)?.ptr as CUdeviceptr + view.offset as CUdeviceptr)
    }

    /// Every buffer, the memory a launch may touch.
    pub fn ranges(&self) -> Vec<EmuRange> {
        self.table.iter().map(|(b, bytes)| EmuRange { base: b.ptr as u64, bytes: bytes as u64 }).collect()
    }
}
