//! Kernel launches. Every integer argument of a kernel is a u64 and every float an f32
//! (kernels/common.cuh), so an argument list is a slice of `Arg` in the order of the kernel's
//! parameters; device addresses are u64 too.
use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::device::{err, Gpu};
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

/// Queues `function` of kernels/`module`.cu with a `grid` of blocks of `block` threads.
pub(super) fn launch(gpu: &Gpu, module: &'static str, function: &str, grid: [usize; 3], block: usize, args: &[Arg]) -> Result<()> {
    let limits = [i32::MAX as usize, 65535, 65535];
    if grid.iter().zip(limits).any(|(&g, limit)| g == 0 || g > limit) {
        return Err(err(format!("{function}: a grid of {grid:?} blocks is outside the device's limits {limits:?}")));
    }
    let f = gpu.kernels.function(module, function)?;
    let mut builder = gpu.stream.launch_builder(&f);
    for arg in args {
        match arg {
            Arg::U64(v) => builder.arg(v),
            Arg::F32(v) => builder.arg(v),
        };
    }
    let config = LaunchConfig { grid_dim: (grid[0] as u32, grid[1] as u32, grid[2] as u32), block_dim: (block as u32, 1, 1), shared_mem_bytes: 0 };
    // SAFETY: `args` follow the kernel's parameter list (each encode/ file passes them in the
    // order of the kernel it names, and checked every address against its view first).
    unsafe { builder.launch(config) }.map(drop).map_err(|e| err(format!("launching {function}: {e}")))
}
