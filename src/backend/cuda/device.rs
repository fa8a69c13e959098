//! The device the backend runs on: the driver (checked for presence first: cudarc panics when
//! it cannot load libcuda), the primary context of device 0, the one stream every launch, copy
//! and graph replay goes through, the kernels and cuBLASLt.
use std::sync::Arc;

use cudarc::driver::sys::CUdevice_attribute;
use cudarc::driver::{CudaContext, CudaStream};

use super::blas::Blas;
use super::ptx::Kernels;
use crate::error::{Error, Result};

/// The backend's error: a one-line `Error::Backend` under the name "cuda".
pub(super) fn err(msg: impl Into<String>) -> Error {
    Error::Backend { backend: "cuda".into(), msg: msg.into() }
}

/// Lowest compute capability the kernels are built for (compute_80: Ampere).
const MIN_MAJOR: i32 = 8;

pub(super) struct Gpu {
    pub ctx: Arc<CudaContext>,
    /// A non-blocking stream of our own: the legacy default stream cannot be captured.
    pub stream: Arc<CudaStream>,
    pub device_name: String,
    pub capability: (i32, i32),
    pub kernels: Kernels,
    /// None when libcublasLt cannot be loaded: every GEMM then runs kernels/linear.cu.
    pub blas: Option<Blas>,
}

impl Gpu {
    /// Device 0; an error, never a panic, without a driver, a device or the kernels.
    pub fn open() -> Result<Gpu> {
        // SAFETY: only tries to dlopen the driver library.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(err("no CUDA driver (libcuda.so) found"));
        }
        let ctx = CudaContext::new(0).map_err(|e| err(format!("no usable device: {e}")))?;
        let attribute = |a| ctx.attribute(a).map_err(|e| err(format!("device attribute: {e}")));
        let capability = (
            attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
            attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
        );
        let device_name = ctx.name().map_err(|e| err(format!("device name: {e}")))?;
        if capability.0 < MIN_MAJOR {
            return Err(err(format!("{device_name} is sm_{}{}; the kernels need sm_80 or newer", capability.0, capability.1)));
        }
        let kernels = Kernels::new(ctx.clone(), capability)?;
        let stream = ctx.new_stream().map_err(|e| err(format!("creating a stream: {e}")))?;
        let blas = Blas::open(&stream)?;
        Ok(Gpu { ctx, stream, device_name, capability, kernels, blas })
    }

    /// Makes the context current on this thread (raw driver calls need it; cudarc's own
    /// launches do it themselves).
    pub fn bind(&self) -> Result<()> {
        self.ctx.bind_to_thread().map_err(|e| err(format!("binding the context: {e}")))
    }

    /// Waits for everything launched so far; reports asynchronous launch failures.
    pub fn wait(&self) -> Result<()> {
        self.stream.synchronize().map_err(|e| err(format!("synchronize: {e}")))
    }
}
