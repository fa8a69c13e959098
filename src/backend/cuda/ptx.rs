//! The kernels of kernels/, embedded by build.rs as sm_80 and sm_90 cubins plus compute_80 PTX,
//! loaded lazily: a module on the first use of one of its functions, then kept; functions
//! cached by name. A device of compute capability 8.x loads the sm_80 cubin (SASS for sm_80 runs
//! on every 8.x), 9.x the sm_90 one; any other device, or one whose driver refuses the cubin,
//! gets the PTX, which the driver JIT-compiles (and caches on disk) if it is new enough for it.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cudarc::driver::sys::{cuDriverGetVersion, cudaError_enum};
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, DriverError};
use cudarc::nvrtc::Ptx;

use super::device::err;
use crate::error::Result;

/// One kernel file of kernels/ as build.rs embeds it.
pub(super) struct Module {
    /// The file stem: kernels/`name`.cu.
    pub name: &'static str,
    /// compute_80 PTX, for devices no cubin matches.
    pub ptx: &'static str,
    /// (compute capability major version, cubin for sm_<major>0).
    pub cubins: &'static [(i32, &'static [u8])],
}

/// Everything build.rs embeds.
pub(super) struct Embedded {
    /// (major, minor) CUDA version of the NVRTC that wrote the PTX: the oldest driver that can
    /// JIT-compile it.
    pub ptx_cuda: (i32, i32),
    pub modules: &'static [Module],
}

pub(super) mod embedded {
    // `KERNELS: Result<Embedded, &str>`: Err says why a build embeds no kernels.
    include!(concat!(env!("OUT_DIR"), "/cuda_kernels.rs"));
}

/// Set (to anything but "0") to load the PTX even where a cubin matches: runs the JIT fallback
/// on a device that would not need it.
const FORCE_PTX_ENV: &str = "DITRT_CUDA_PTX";

pub(super) struct Kernels {
    ctx: Arc<CudaContext>,
    /// The device's compute capability major version: which cubin it takes.
    major: i32,
    force_ptx: bool,
    ptx_cuda: (i32, i32),
    modules: &'static [Module],
    loaded: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<String, CudaFunction>>,
}

impl Kernels {
    pub fn new(ctx: Arc<CudaContext>, capability: (i32, i32)) -> Result<Kernels> {
        let embedded = embedded::KERNELS.map_err(|why| err(format!("this build embeds no kernels: {why}")))?;
        let force_ptx = std::env::var(FORCE_PTX_ENV).is_ok_and(|v| v != "0");
        Ok(Kernels::with(ctx, capability.0, force_ptx, embedded))
    }

    fn with(ctx: Arc<CudaContext>, major: i32, force_ptx: bool, embedded: Embedded) -> Kernels {
        let Embedded { ptx_cuda, modules } = embedded;
        Kernels { ctx, major, force_ptx, ptx_cuda, modules, loaded: Mutex::default(), functions: Mutex::default() }
    }

    /// Function `name` of kernels/`module`.cu.
    pub fn function(&self, module: &'static str, name: &str) -> Result<CudaFunction> {
        if let Some(f) = self.functions.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Ok(f.clone());
        }
        let module_handle = self.module(module)?;
        let function = module_handle.load_function(name).map_err(|e| err(format!("kernel {name} in {module}.cu: {e}")))?;
        self.functions.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), function.clone());
        Ok(function)
    }

    fn module(&self, name: &'static str) -> Result<Arc<CudaModule>> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = loaded.get(name) {
            return Ok(m.clone());
        }
        let embedded = self.modules.iter().find(|m| m.name == name).ok_or_else(|| err(format!("no kernel file {name}.cu embedded")))?;
        let module = self.load(embedded)?;
        loaded.insert(name, module.clone());
        Ok(module)
    }

    /// The module's cubin for this device, else (none matches, the driver refuses it, or
    /// DITRT_CUDA_PTX is set) its PTX.
    fn load(&self, module: &Module) -> Result<Arc<CudaModule>> {
        let one_line = |e: DriverError| e.to_string().replace('\n', " ");
        let cubin = module.cubins.iter().find(|(major, _)| *major == self.major && !self.force_ptx);
        let refused = match cubin {
            Some((major, cubin)) => match self.ctx.load_module(Ptx::from_binary(cubin.to_vec())) {
                Ok(loaded) => return Ok(loaded),
                Err(e) => Some(format!("its sm_{major}0 cubin: {}", one_line(e))),
            },
            None => None,
        };
        self.ctx.load_module(Ptx::from_src(module.ptx)).map_err(|e| {
            let too_new = e.0 == cudaError_enum::CUDA_ERROR_UNSUPPORTED_PTX_VERSION;
            let too_old = too_new.then(|| DriverTooOld { ptx_needs: self.ptx_cuda, driver: driver_cuda_version() });
            err(ptx_failure(module.name, refused, &one_line(e), too_old))
        })
    }
}

/// The CUDA version of the driver, (major, minor), if it says.
fn driver_cuda_version() -> Option<(i32, i32)> {
    let mut version = 0;
    // SAFETY: writes one int; the driver library is loaded (a context exists).
    let ok = unsafe { cuDriverGetVersion(&mut version) } == cudaError_enum::CUDA_SUCCESS;
    ok.then_some((version / 1000, version % 1000 / 10))
}

/// The versions behind CUDA_ERROR_UNSUPPORTED_PTX_VERSION, (major, minor) each.
struct DriverTooOld {
    ptx_needs: (i32, i32),
    /// None when cuDriverGetVersion does not answer.
    driver: Option<(i32, i32)>,
}

/// The one-line error for PTX of kernels/`name`.cu the driver did not load, after the cubin
/// it `refused` (if one matched).
fn ptx_failure(name: &str, refused: Option<String>, error: &str, too_old: Option<DriverTooOld>) -> String {
    let refused = refused.map(|r| format!("{r}; ")).unwrap_or_default();
    let why = match too_old {
        Some(DriverTooOld { ptx_needs: (major, minor), driver }) => {
            let driver = driver.map_or("a driver that does not say its CUDA version".into(), |(a, b)| format!("a CUDA {a}.{b} driver"));
            format!(
                "its PTX needs a CUDA {major}.{minor} driver or newer, found {driver} (cubins are embedded for sm_80 and sm_90 only; update the driver) ({error})"
            )
        }
        None => format!("its PTX: {error}"),
    };
    format!("loading {name}.cu: {refused}{why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A driver too old for the PTX is named, with the version the PTX needs (no device needed).
    #[test]
    fn a_driver_too_old_for_the_ptx_is_named_with_the_version_needed() {
        let error = "DriverError(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, \"the provided PTX was compiled with an unsupported toolchain.\")";
        let msg = ptx_failure("attention", None, error, Some(DriverTooOld { ptx_needs: (12, 9), driver: Some((12, 2)) }));
        assert!(msg.starts_with("loading attention.cu: its PTX needs a CUDA 12.9 driver or newer, found a CUDA 12.2 driver"), "{msg}");
        assert!(msg.contains("update the driver") && msg.contains("UNSUPPORTED_PTX_VERSION"), "{msg}");
        let msg = ptx_failure("linear", Some("its sm_90 cubin: refused".into()), "garbage", None);
        assert_eq!(msg, "loading linear.cu: its sm_90 cubin: refused; its PTX: garbage");
    }

    /// A module the driver cannot load, cubin and PTX alike, is a one-line error naming it, not
    /// a panic. Runs only where a CUDA device answers (the GPU bundle); elsewhere it says why
    /// it skipped.
    #[test]
    fn unloadable_module_is_a_one_line_error_naming_it() {
        // SAFETY: only tries to dlopen the driver library.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return eprintln!("skipped: no CUDA driver");
        }
        let ctx = match CudaContext::new(0) {
            Ok(ctx) => ctx,
            Err(e) => return eprintln!("skipped: no CUDA device ({e})"),
        };
        let major = ctx.attribute(cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR).unwrap();
        let kernels = Kernels::with(ctx, major, false, Embedded { ptx_cuda: (12, 9), modules: &[] });
        let broken = Module {
            name: "broken_on_purpose",
            ptx: ".version 8.0\n.target sm_80\nthis is not ptx\n",
            cubins: Box::leak(Box::new([(major, &b"not a cubin"[..])])),
        };
        let msg = match kernels.load(&broken) {
            Ok(_) => panic!("garbage loaded"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains(&format!("loading broken_on_purpose.cu: its sm_{major}0 cubin: ")), "{msg}");
        assert!(msg.contains("; its PTX: "), "{msg}");
        assert!(!msg.contains('\n'), "not one line: {msg}");
    }
}
