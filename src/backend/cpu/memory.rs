//! Buffers of the CPU backend and the resolution of views to element pointers.
//!
//! Every buffer is one zero-initialised, 64-byte-aligned heap allocation in a table behind a
//! mutex. An op holds the table lock (`Views`) from argument checks to its last store, so no
//! buffer can be freed under it and ops of different threads never interleave. While the lock
//! is held, ops read and write through `Src`/`Dst`, raw pointers to checked views.
use super::convert;
use super::err;
use super::gemm::{Elems, Isa, MatRef, PackedB};
use super::packed_cache::{PackCache, PackForm, PackKey};
use crate::backend::table::BufferTable;
use crate::backend::{view_checks, BufId, Buffers, View};
use crate::error::Result;
use crate::tensor::DType;
use rayon::prelude::*;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::any::Any;
use std::borrow::Cow;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Alignment of every buffer: more than any element type needs, one cache line.
const BUFFER_ALIGN: usize = 64;

/// Elements converted per rayon task when a whole view is widened to f32.
const CONVERT_CHUNK: usize = 1 << 16;

/// The host's MemAvailable (/proc/meminfo) in bytes; None where the file is missing.
pub fn host_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// One heap allocation owned by the table.
struct Buffer {
    ptr: NonNull<u8>,
    bytes: usize,
    /// Host writes so far: the version packings of its contents are valid for.
    version: AtomicU64,
    /// Whether an op has written it (an activation: its packings are not kept).
    op_written: AtomicBool,
}

// SAFETY: a Buffer exclusively owns its allocation; it is only touched under the table lock.
unsafe impl Send for Buffer {}

impl Buffer {
    fn layout(bytes: usize) -> Option<Layout> {
        Layout::from_size_align(bytes.max(1), BUFFER_ALIGN).ok()
    }

    fn new(bytes: usize) -> Result<Buffer> {
        let layout = Self::layout(bytes).ok_or_else(|| err(format!("alloc: {bytes} bytes is too large")))?;
        // SAFETY: the layout has a non-zero size. Zeroed so that no read sees uninitialised bytes.
        let ptr = unsafe { alloc_zeroed(layout) };
        NonNull::new(ptr)
            .map(|ptr| Buffer { ptr, bytes, version: AtomicU64::new(0), op_written: AtomicBool::new(false) })
            .ok_or_else(|| err(format!("alloc: out of memory allocating {bytes} bytes")))
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let layout = Self::layout(self.bytes).expect("layout was valid at allocation");
        // SAFETY: allocated in `Buffer::new` with this very layout, freed once.
        unsafe { dealloc(self.ptr.as_ptr(), layout) }
    }
}

/// All buffers of one backend.
#[derive(Default)]
pub(super) struct Memory {
    table: Mutex<BufferTable<Buffer>>,
    packed: PackCache,
}

impl Memory {
    /// Locks the table for one op (or one transfer). A panic in an earlier op cannot leave the
    /// table itself inconsistent, so a poisoned lock is taken over.
    pub fn lock(&self) -> Views<'_> {
        Views { table: self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner()), packed: &self.packed }
    }
}

impl Buffers for Memory {
    fn alloc(&self, bytes: usize) -> Result<BufId> {
        let buffer = Buffer::new(bytes)?;
        self.lock().table.insert(buffer, bytes).map_err(err)
    }

    fn free(&self, buf: BufId) {
        self.lock().table.remove(buf);
        self.packed.forget(buf);
    }

    fn write(&self, dst: View, bytes: &[u8]) -> Result<()> {
        view_checks::write_len(&dst, bytes.len()).map_err(err)?;
        let views = self.lock();
        let ptr = views.locate("write", "dst", &dst)?;
        views.table.get("write", "dst", &dst).map_err(err)?.version.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `locate` checked that the view's bytes lie inside a live buffer; the host slice
        // cannot alias backend memory (it is not exposed outside the table).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
        Ok(())
    }

    fn read(&self, src: View) -> Result<Vec<u8>> {
        let views = self.lock();
        let ptr = views.locate("read", "src", &src)?;
        // SAFETY: `locate` checked that the view's bytes lie inside a live buffer.
        Ok(unsafe { std::slice::from_raw_parts(ptr, src.bytes()) }.to_vec())
    }
}

/// The locked buffer table, for the duration of one op.
pub(super) struct Views<'t> {
    table: MutexGuard<'t, BufferTable<Buffer>>,
    packed: &'t PackCache,
}

impl Views<'_> {
    /// Pointer to the first byte of `view`, after checking that its buffer exists, its offset
    /// is aligned for its dtype, and all its bytes lie inside the buffer.
    fn locate(&self, op: &str, field: &str, view: &View) -> Result<*mut u8> {
        let buffer = self.table.get(op, field, view).map_err(err)?;
        // SAFETY: offset <= offset + len * size <= buffer size, so the pointer stays inside the
        // allocation.
        Ok(unsafe { buffer.ptr.as_ptr().add(view.offset) })
    }

    /// A view the op reads.
    pub fn src(&self, op: &str, field: &str, view: &View) -> Result<Src<'_>> {
        let ptr = self.locate(op, field, view)?;
        Ok(Src { ptr, len: view.len, dtype: view.dtype, _table: PhantomData })
    }

    /// A view the op writes (or reads and writes).
    pub fn dst(&self, op: &str, field: &str, view: &View) -> Result<Dst<'_>> {
        let ptr = self.locate(op, field, view)?;
        self.table.get(op, field, view).map_err(err)?.op_written.store(true, Ordering::Relaxed);
        Ok(Dst { ptr, len: view.len, dtype: view.dtype, _table: PhantomData })
    }
}

impl<'t> Views<'t> {
    /// `b` (a matrix over the elements of `view`) packed for this machine's kernels: kept across
    /// launches while `view`'s buffer is only written by the host (a weight), packed afresh for
    /// an activation.
    pub fn packed(&self, op: &str, field: &str, view: &View, b: MatRef, bf16: bool) -> Result<Arc<PackedB>> {
        let isa = Isa::best();
        self.kept(op, field, view, (PackForm::B, b.geometry(), bf16), || PackedB::new(b, isa, bf16, true))
    }

    /// What `make` builds from the elements of `view` (in `form`, over the matrix `geometry`,
    /// for bf16 products or not), kept across launches as `packed` keeps b operands.
    pub fn kept<T: Any + Send + Sync>(
        &self,
        op: &str,
        field: &str,
        view: &View,
        (form, geometry, bf16): (PackForm, [usize; 4], bool),
        make: impl FnOnce() -> T,
    ) -> Result<Arc<T>> {
        let buffer = self.table.get(op, field, view).map_err(err)?;
        if buffer.op_written.load(Ordering::Relaxed) {
            return Ok(Arc::new(make()));
        }
        let key = PackKey { form, buf: view.buf, byte_offset: view.offset, geometry, dtype: view.dtype, isa: Isa::best(), bf16 };
        Ok(self.packed.get_or_pack(key, buffer.version.load(Ordering::Relaxed), make))
    }
}

// The aliasing contract of `Src` and `Dst`, on which every `unsafe` below relies:
// - they are created by `Views` for checked views, and cannot outlive the table lock;
// - an op resolves a `Dst` overlapping one of its `Src`s only where the op's doc allows
//   `out` to equal an input (checked with `backend::view_checks::disjoint_or_same`); such a `Src` is then
//   read only through `load`/`get`, each element before its own store, by the same thread;
// - concurrent workers of one op store to disjoint element ranges.
// Under this contract no element is read while another thread writes it.

/// A checked view an op reads: `len` elements of `dtype` at `ptr`.
#[derive(Clone, Copy)]
pub(super) struct Src<'t> {
    ptr: *const u8,
    len: usize,
    dtype: DType,
    _table: PhantomData<&'t BufferTable<Buffer>>,
}

/// A checked view an op writes: `len` elements of `dtype` at `ptr`.
#[derive(Clone, Copy)]
pub(super) struct Dst<'t> {
    ptr: *mut u8,
    len: usize,
    dtype: DType,
    _table: PhantomData<&'t BufferTable<Buffer>>,
}

// SAFETY: shared by the rayon workers of one op under the aliasing contract above.
unsafe impl Send for Src<'_> {}
unsafe impl Sync for Src<'_> {}
unsafe impl Send for Dst<'_> {}
unsafe impl Sync for Dst<'_> {}

/// Panics (an internal bug, never a misuse: ops check their sizes first) unless
/// `start..start + n` lies within `len` elements.
fn in_bounds(start: usize, n: usize, len: usize) {
    assert!(start.checked_add(n).is_some_and(|end| end <= len), "cpu backend bug: elements {start}+{n} outside a view of {len}");
}

impl<'t> Src<'t> {
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Elements `start..start + out.len()` as f32.
    pub fn load(&self, start: usize, out: &mut [f32]) {
        in_bounds(start, out.len(), self.len);
        // SAFETY: in bounds and aligned (checked by `locate`); no concurrent writer (contract).
        unsafe { convert::load(self.ptr.add(start * self.dtype.size()), self.dtype, out) }
    }

    /// Element `i` as f32.
    pub fn get(&self, i: usize) -> f32 {
        let mut v = [0.0];
        self.load(i, &mut v);
        v[0]
    }

    /// The whole view as f32: borrowed when stored as f32, else widened (in parallel).
    /// Only for views no output of the op overlaps (the borrow outlives single loads).
    pub fn values(&self) -> Cow<'t, [f32]> {
        match self.dtype {
            // SAFETY: f32 storage, aligned and in bounds; no output overlaps (see above), and the
            // lifetime 't keeps the table locked while the slice lives.
            DType::F32 => Cow::Borrowed(unsafe { std::slice::from_raw_parts(self.ptr.cast::<f32>(), self.len) }),
            _ => {
                let mut out = vec![0.0; self.len];
                out.par_chunks_mut(CONVERT_CHUNK).enumerate().for_each(|(i, chunk)| self.load(i * CONVERT_CHUNK, chunk));
                Cow::Owned(out)
            }
        }
    }

    /// The stored elements of a float view, unconverted. Same overlap rule as `values`.
    pub fn elems(&self) -> Elems<'t> {
        // SAFETY: storage of the matched dtype, aligned and in bounds; no output overlaps it.
        unsafe {
            match self.dtype {
                DType::F32 => Elems::F32(std::slice::from_raw_parts(self.ptr.cast(), self.len)),
                DType::F16 => Elems::F16(std::slice::from_raw_parts(self.ptr.cast(), self.len)),
                DType::BF16 => Elems::Bf16(std::slice::from_raw_parts(self.ptr.cast(), self.len)),
                DType::U32 => panic!("cpu backend bug: float elements of a u32 view"),
            }
        }
    }

    /// The ids of a u32 view (the caller checked the dtype). Same overlap rule as `values`.
    pub fn ids(&self) -> &'t [u32] {
        assert_eq!(self.dtype, DType::U32, "cpu backend bug: ids of a {} view", self.dtype);
        // SAFETY: u32 storage, aligned and in bounds; no output overlaps it.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u32>(), self.len) }
    }

    /// The raw bytes of elements `start..start + n`. Same overlap rule as `values`.
    pub fn raw(&self, start: usize, n: usize) -> &'t [u8] {
        in_bounds(start, n, self.len);
        let size = self.dtype.size();
        // SAFETY: in bounds; no output overlaps it.
        unsafe { std::slice::from_raw_parts(self.ptr.add(start * size), n * size) }
    }
}

impl Dst<'_> {
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Writes `values` to elements `start..start + values.len()`.
    pub fn store(&self, start: usize, values: &[f32]) {
        in_bounds(start, values.len(), self.len);
        // SAFETY: in bounds and aligned; this worker is the only one touching these elements.
        unsafe { convert::store(self.ptr.add(start * self.dtype.size()), self.dtype, values) }
    }

    /// Writes element `i`.
    pub fn set(&self, i: usize, value: f32) {
        self.store(i, &[value]);
    }

    /// Reads back elements `start..start + out.len()` (for read-write views).
    pub fn load(&self, start: usize, out: &mut [f32]) {
        in_bounds(start, out.len(), self.len);
        // SAFETY: in bounds and aligned; this worker is the only one touching these elements.
        unsafe { convert::load(self.ptr.add(start * self.dtype.size()), self.dtype, out) }
    }

    /// Adds `values` to elements `start..start + values.len()`.
    pub fn accumulate(&self, start: usize, values: &[f32]) {
        let mut old = [0.0f32; 256];
        for (i, chunk) in values.chunks(old.len()).enumerate() {
            let at = start + i * old.len();
            let old = &mut old[..chunk.len()];
            self.load(at, old);
            old.iter_mut().zip(chunk).for_each(|(o, v)| *o += v);
            self.store(at, old);
        }
    }

    /// Copies raw bytes of the same dtype to elements from `start` on.
    pub fn store_raw(&self, start: usize, bytes: &[u8]) {
        let size = self.dtype.size();
        in_bounds(start, bytes.len() / size, self.len);
        assert_eq!(bytes.len() % size, 0, "cpu backend bug: {} raw bytes of {}", bytes.len(), self.dtype);
        // SAFETY: in bounds; `bytes` comes from a view no output overlaps, so the ranges are
        // disjoint; this worker is the only one touching these elements.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(start * size), bytes.len()) }
    }
}
