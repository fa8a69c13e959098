//! Launches on the device (`OnDevice`, the encoders' target). Every integer argument of a
//! kernel is a u64 and every float an f32 (kernels/common.cuh), so an argument list is a slice
//! of `Arg` in the order of the kernel's parameters; device addresses are u64 too.
use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::blas::RowMajorGemm;
use super::device::{err, Gpu};
use super::encode::{Kernel, Target};
use super::memory::Locked;
use crate::backend::View;
use crate::error::Result;

#[derive(Clone, Copy, Debug)]
pub(super) enum Arg {
    U64(u64),
    F32(f32),
}

impl From<u64> for Arg {
    fn from(v: u64) -> Arg {
        Arg::U64(v)
    }
}

impl From<usize> for Arg {
    fn from(v: usize) -> Arg {
        Arg::U64(v as u64)
    }
}

impl From<f32> for Arg {
    fn from(v: f32) -> Arg {
        Arg::F32(v)
    }
}

/// Threads per block of the flat (grid-stride) kernels.
pub(super) const FLAT_THREADS: usize = 256;

/// Blocks of a flat launch over `n` elements: one element per thread, capped (the kernels
/// loop with a grid stride beyond that).
pub(super) fn flat_blocks(n: usize) -> usize {
    n.div_ceil(FLAT_THREADS).clamp(1, 1 << 20)
}

/// The device as the encoders' target: views resolved under the buffer-table lock, kernels and
/// cuBLASLt products queued on the stream.
pub(super) struct OnDevice<'a> {
    pub gpu: &'a Gpu,
    pub views: &'a Locked<'a>,
}

impl Target for OnDevice<'_> {
    fn ptr(&self, op: &str, field: &str, view: &View) -> Result<CUdeviceptr> {
        self.views.ptr(op, field, view)
    }

    fn launch(&self, kernel: &Kernel) -> Result<()> {
        let Kernel { module, function, grid, block, args } = *kernel;
        let f = self.gpu.kernels.function(module, function)?;
        let mut builder = self.gpu.stream.launch_builder(&f);
        for arg in args {
            match arg {
                Arg::U64(v) => builder.arg(v),
                Arg::F32(v) => builder.arg(v),
            };
        }
        let config = LaunchConfig { grid_dim: grid.into(), block_dim: (block, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: `args` follow the kernel's parameter list (each encode/ file passes them in the
        // order of the kernel it names, which the `signatures` test checks against the PTX of
        // every kernel, and checked every address against its view first).
        unsafe { builder.launch(config) }.map(drop).map_err(|e| err(format!("launching {function}: {e}")))
    }

    fn gemm(&self, gemm: &RowMajorGemm) -> Result<bool> {
        match &self.gpu.blas {
            Some(blas) => blas.gemm(gemm, &self.gpu.stream),
            None => Ok(false),
        }
    }
}
