//! The backend interface, as in ggml: memory, `launch(&Op)` and `compile(&[Op])`, no per-op
//! methods. Models speak only this trait and the op structs of `ops`; each backend keeps its op
//! switch (`match op`) private.
//!
//! An op's arguments are checked once, by `op_rules::check`, at the two entry points: the first
//! thing every backend's `launch` does, and what a `compile` that records (wgpu, CUDA) does to
//! every op before recording (the default `compile` replays `launch`). Below them nothing
//! re-checks a rule. (Checking when a graph is built would not be enough: `launch` and
//! `compile` are public and take ops from anywhere, and the rules guard the GPU kernels' memory
//! accesses; a trait method cannot be made final, so each backend makes the one call itself.)
//!
//! `view_checks` holds the checks the rules are made of, `table` the buffer table every backend
//! keeps. What each backend refuses beyond the rules (its hard limits) is in docs/LIMITS.md.
pub mod auto;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod op_rules;
mod ops;
pub mod table;
pub mod view_checks;
#[cfg(feature = "wgpu")]
pub mod wgpu;

pub use ops::*;

use crate::error::Result;
use crate::tensor::DType;

/// A backend's buffers: allocation and host transfers, by buffer id.
pub trait Buffers {
    /// A new buffer of `bytes` bytes (contents unspecified).
    fn alloc(&self, bytes: usize) -> Result<BufId>;
    /// Frees a buffer; an unknown id is ignored.
    fn free(&self, buf: BufId);
    /// Copy host bytes into a view; `bytes.len()` must equal `dst.bytes()`.
    fn write(&self, dst: View, bytes: &[u8]) -> Result<()>;
    /// Copy a view back to the host.
    fn read(&self, src: View) -> Result<Vec<u8>>;
}

pub trait Backend: Send + Sync {
    /// Human-readable name, e.g. "cpu (2 threads)".
    fn name(&self) -> String;
    /// Whether buffers of `dtype` can be stored and computed on.
    fn supports(&self, dtype: DType) -> bool;
    /// Bytes a new session may still take (host: MemAvailable; CUDA: the device's free
    /// memory), for the preflight in `Session::new`; None where the API cannot tell (wgpu,
    /// whose allocations fail cleanly on their own).
    fn free_memory(&self) -> Option<u64> {
        None
    }

    /// Bytes the backend keeps beside a graph's `bytes` of weights stored as `dtype` and read by
    /// `ops` (the CPU's packed GEMM panels and Winograd-domain convolution weights), which the
    /// preflight counts too.
    fn weight_copy_bytes(&self, _bytes: usize, _dtype: DType, _ops: &[Op]) -> usize {
        0
    }

    /// The backend's buffers, ready for use from this thread (CUDA binds its context first).
    fn buffers(&self) -> Result<&dyn Buffers>;

    /// A new buffer of `bytes` bytes (contents unspecified).
    fn alloc(&self, bytes: usize) -> Result<BufId> {
        self.buffers()?.alloc(bytes)
    }
    fn free(&self, buf: BufId) {
        if let Ok(buffers) = self.buffers() {
            buffers.free(buf)
        }
    }
    /// Copy host bytes into a view; `bytes.len()` must equal `dst.bytes()`.
    fn write(&self, dst: View, bytes: &[u8]) -> Result<()> {
        self.buffers()?.write(dst, bytes)
    }
    /// Copy a view back to the host.
    fn read(&self, src: View) -> Result<Vec<u8>> {
        self.buffers()?.read(src)
    }
    /// Wait until every launched op has finished.
    fn synchronize(&self) -> Result<()>;

    /// Launch one op (asynchronously where the backend is). First checks `op_rules::check`;
    /// every misuse is an `Error::Backend` naming the op and the field.
    fn launch(&self, op: &Op) -> Result<()>;

    /// Prepare a bound graph's launches (views in this backend's buffers) once, for replay
    /// per step. The default replays `launch` op by op; backends that can record a whole
    /// sequence (one wgpu command buffer, a CUDA graph) override it, check every op with
    /// `op_rules::check` first, and report misuse here.
    fn compile(&self, ops: &[Op]) -> Result<Box<dyn CompiledOps>> {
        Ok(Box::new(Replay(ops.to_vec())))
    }

    /// Refuses, before anything is allocated or uploaded, ops it could not compile beyond the
    /// op rules and memory: `ops` with each view at its byte offset in buffer `view.buf.0`,
    /// `buffer_bytes` the size of each buffer. None by default; wgpu's are the adapter's buffer
    /// and binding sizes and workgroup grids (docs/LIMITS.md).
    fn check_placed(&self, _ops: &[Op], _buffer_bytes: &[usize]) -> Result<()> {
        Ok(())
    }

    /// The backend to bind a graph to when this one refuses it (`Session::new`): `auto`'s next
    /// choice, opened now. None for a backend chosen by name.
    fn fallback(&self) -> Option<Result<std::sync::Arc<dyn Backend>>> {
        None
    }
}

/// A sequence of launches prepared by `Backend::compile`.
pub trait CompiledOps: Send + Sync {
    /// Launch the sequence once (asynchronously where the backend is). `backend` is the one
    /// that compiled it: the default replay launches through it, recorded forms hold what
    /// they need.
    fn run(&self, backend: &dyn Backend) -> Result<()>;
}

/// The default compiled form: the ops themselves, launched one by one.
struct Replay(Vec<Op>);

impl CompiledOps for Replay {
    fn run(&self, backend: &dyn Backend) -> Result<()> {
        self.0.iter().try_for_each(|op| backend.launch(op))
    }
}

/// Backend names the command line accepts.
pub const BACKEND_NAMES: &[&str] = &["auto", "cpu", "wgpu", "cuda"];

/// The backend called `name`. `auto` picks CUDA when a device answers, else wgpu on a real GPU
/// adapter, else the CPU (a CPU adapter such as lavapipe is slower than the CPU backend), and
/// falls back along that order for a graph its choice refuses (`auto::Auto`); `wgpu` takes any
/// adapter.
pub fn select(name: &str) -> Result<std::sync::Arc<dyn Backend>> {
    use crate::error::Error;
    use std::sync::Arc;
    match name {
        "auto" => auto::Auto::first(AUTO_ORDER),
        "cpu" => Ok(Arc::new(cpu::CpuBackend::new())),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Arc::new(wgpu::WgpuBackend::new()?)),
        #[cfg(not(feature = "wgpu"))]
        "wgpu" => Err(Error::Backend { backend: name.into(), msg: "not compiled in (build with --features wgpu)".into() }),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Arc::new(cuda::CudaBackend::new()?)),
        #[cfg(not(feature = "cuda"))]
        "cuda" => Err(Error::Backend { backend: name.into(), msg: "not compiled in (build with --features cuda)".into() }),
        other => Err(Error::invalid(format!("unknown backend '{other}' (expected one of {})", BACKEND_NAMES.join(", ")))),
    }
}

/// `auto`'s order of preference.
const AUTO_ORDER: &[auto::Opener] = &[
    #[cfg(feature = "cuda")]
    || Ok(std::sync::Arc::new(cuda::CudaBackend::new()?)),
    #[cfg(feature = "wgpu")]
    || Ok(std::sync::Arc::new(wgpu::WgpuBackend::hardware()?)),
    || Ok(std::sync::Arc::new(cpu::CpuBackend::new())),
];
