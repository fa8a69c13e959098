//! The emulator's C interface (kernels/emu/runtime.cpp `ditrt_emu_launch`), linked from the
//! archive build.rs makes with feature `cuda-emu` (ptx_build/emulator.rs).
use std::ffi::{c_char, CString};

use super::super::device::err;
use super::super::encode::Kernel;
use super::super::launch::Arg;
use crate::error::Result;

/// One argument: kind b'u' (u64) or b'f' (f32), as registry.h `EmuArg`.
#[repr(C)]
struct EmuArg {
    kind: u32,
    u: u64,
    f: f32,
}

/// A device buffer: `bytes` bytes at host address `base`.
#[repr(C)]
pub(super) struct EmuRange {
    pub base: u64,
    pub bytes: u64,
}

/// Counts of launches (runtime.cpp `EmuStats`); requests are warp-level.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EmuStats {
    pub shared_loads: u64,
    pub shared_stores: u64,
    /// Passes the shared requests take with bank conflicts serialised, and without them.
    pub shared_wavefronts: u64,
    pub shared_ideal: u64,
    pub global_requests: u64,
    /// 32-byte sectors the global requests touch, and the fewest their bytes need.
    pub global_sectors: u64,
    pub global_ideal: u64,
    pub mma: u64,
}

extern "C" {
    fn ditrt_emu_launch(
        module: *const c_char,
        function: *const c_char,
        grid: *const u32,
        block: *const u32,
        args: *const EmuArg,
        n_args: usize,
        buffers: *const EmuRange,
        n_buffers: usize,
        stats: *mut EmuStats,
        err: *mut c_char,
        err_len: usize,
    ) -> i32;
}

/// Runs `kernel` (module `module`, which may name a planted variant) to completion on the
/// emulator, the device being `buffers`; with `stats`, its counts are added there.
pub(super) fn launch(module: &str, kernel: &Kernel, buffers: &[EmuRange], stats: Option<&mut EmuStats>) -> Result<()> {
    let args: Vec<EmuArg> = kernel
        .args
        .iter()
        .map(|a| match *a {
            Arg::U64(u) => EmuArg { kind: u32::from(b'u'), u, f: 0.0 },
            Arg::F32(f) => EmuArg { kind: u32::from(b'f'), u: 0, f },
        })
        .collect();
    let name = |s: &str| CString::new(s).map_err(|_| err(format!("emulator: {s:?} has a NUL byte")));
    let (module, function) = (name(module)?, name(kernel.function)?);
    let block = [kernel.block, 1, 1];
    let mut message = vec![0u8; 512];
    let stats = stats.map_or(std::ptr::null_mut(), |s| s as *mut EmuStats);
    // SAFETY: every pointer is live for the call; each range of `buffers` is host memory the
    // caller holds locked; runtime.cpp checks the arguments against the kernel's parameters
    // and every access of the kernel against `buffers`.
    let rc = unsafe {
        ditrt_emu_launch(
            module.as_ptr(),
            function.as_ptr(),
            kernel.grid.as_ptr(),
            block.as_ptr(),
            args.as_ptr(),
            args.len(),
            buffers.as_ptr(),
            buffers.len(),
            stats,
            message.as_mut_ptr().cast(),
            message.len(),
        )
    };
    match rc {
        0 => Ok(()),
        _ => {
            let end = message.iter().position(|&b| b == 0).unwrap_or(message.len());
            Err(err(format!("emulator: {}", String::from_utf8_lossy(&message[..end]))))
        }
    }
}
