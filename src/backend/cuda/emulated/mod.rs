//! The `cuda-emu` backend: the CUDA backend's encoders (src/backend/cuda/encode/) with their
//! launches run by the host emulator of kernels/*.cu (kernels/emu/, built by build.rs with
//! feature `cuda-emu`) instead of the driver, and cuBLASLt's products by a CPU GEMM with the
//! same layouts and epilogues (`gemm`). Buffers are host memory (`memory`). Launches run to
//! completion one at a time, so `synchronize` has nothing to wait for. No GPU is needed: CI
//! runs the op tests on it against the f64 references, and the performance table
//! (scripts/check_kernels.sh --emulate) from its counts.
mod ffi;
mod gemm;
mod memory;
#[cfg(test)]
mod planted;
#[cfg(test)]
mod ptx_ops;
#[cfg(test)]
mod table;

use std::sync::Mutex;

use cudarc::driver::sys::CUdeviceptr;

use super::blas::RowMajorGemm;
use super::device::err;
use super::encode::{encode, Encoder, Kernel, Target};
use crate::backend::*;
use crate::error::Result;
use crate::tensor::DType;
pub use ffi::EmuStats;
use memory::{Locked, Memory};

/// The counts of one launch, with its shape.
#[derive(Clone, Debug)]
pub struct LaunchStats {
    pub function: String,
    pub grid: [u32; 3],
    pub block: u32,
    pub counts: EmuStats,
}

#[derive(Default)]
pub struct CudaEmuBackend {
    memory: Memory,
    /// A kernel module replaced by a planted-bug variant (ptx_build/emulator.rs `PLANTED`).
    planted: Option<(&'static str, &'static str)>,
    /// Launch counts, when recorded.
    stats: Option<Mutex<Vec<LaunchStats>>>,
}

impl CudaEmuBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Launches of kernels/`module`.cu run `variant` (e.g. "attention.missing_sync") instead.
    #[cfg(test)]
    fn with_planted_bug(module: &'static str, variant: &'static str) -> Self {
        CudaEmuBackend { planted: Some((module, variant)), ..Self::default() }
    }

    /// Records the bank-conflict, coalescing and mma counts of every launch (`take_stats`).
    pub fn with_stats() -> Self {
        CudaEmuBackend { stats: Some(Mutex::default()), ..Self::default() }
    }

    /// The counts recorded since the last call, in launch order.
    pub fn take_stats(&self) -> Vec<LaunchStats> {
        self.stats.as_ref().map(|s| std::mem::take(&mut *s.lock().unwrap_or_else(|p| p.into_inner()))).unwrap_or_default()
    }
}

/// The emulator as the encoders' target, under the buffer-table lock.
struct OnEmulator<'a> {
    backend: &'a CudaEmuBackend,
    views: &'a Locked<'a>,
}

impl Target for OnEmulator<'_> {
    fn ptr(&self, op: &str, field: &str, view: &View) -> Result<CUdeviceptr> {
        self.views.ptr(op, field, view)
    }

    fn launch(&self, kernel: &Kernel) -> Result<()> {
        let module = match self.backend.planted {
            Some((module, variant)) if module == kernel.module => variant,
            _ => kernel.module,
        };
        let mut counts = EmuStats::default();
        let recording = self.backend.stats.as_ref();
        ffi::launch(module, kernel, &self.views.ranges(), recording.map(|_| &mut counts))?;
        if let Some(stats) = recording {
            let launch = LaunchStats { function: kernel.function.to_string(), grid: kernel.grid, block: kernel.block, counts };
            stats.lock().unwrap_or_else(|p| p.into_inner()).push(launch);
        }
        Ok(())
    }

    fn gemm(&self, g: &RowMajorGemm) -> Result<bool> {
        // SAFETY: the encoder resolved every address of `g` through `ptr` against the locked
        // table and sized the views for these matrices (op_rules); out is a separate view.
        unsafe { gemm::gemm(g) };
        Ok(true)
    }
}

impl Backend for CudaEmuBackend {
    fn name(&self) -> String {
        "cuda-emu (kernels/*.cu on the host emulator, CPU GEMM for cuBLASLt)".into()
    }

    fn supports(&self, _dtype: DType) -> bool {
        true
    }

    fn buffers(&self) -> Result<&dyn Buffers> {
        Ok(&self.memory)
    }

    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    /// As `CudaBackend::launch`: the rules, and an embedding's ids, checked first.
    fn launch(&self, op: &Op) -> Result<()> {
        op_rules::check(op).map_err(err)?;
        if let Op::Embedding(o) = op {
            super::check_ids(self, o)?;
        }
        let views = self.memory.lock();
        encode(&Encoder::new(&OnEmulator { backend: self, views: &views }), op)
    }
}
