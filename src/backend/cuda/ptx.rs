//! The kernels of kernels/, embedded as PTX by build.rs (compute_80 and compute_90), loaded
//! lazily: a module on the first use of one of its functions, then kept; functions cached by
//! name. The driver JIT-compiles the PTX for the device (and caches the result on disk).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule};
use cudarc::nvrtc::Ptx;

use super::device::err;
use crate::error::Result;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/cuda_kernels.rs"));
}

pub(super) struct Kernels {
    ctx: Arc<CudaContext>,
    /// Which PTX of each module this device takes: 1 (compute_90) on sm_90+, else 0.
    arch: usize,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<String, CudaFunction>>,
}

impl Kernels {
    pub fn new(ctx: Arc<CudaContext>, capability: (i32, i32)) -> Result<Kernels> {
        if let Some(why) = embedded::MISSING {
            return Err(err(format!("this build embeds no kernels: {why}")));
        }
        let arch = usize::from(capability.0 >= 9);
        Ok(Kernels { ctx, arch, modules: Mutex::default(), functions: Mutex::default() })
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
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = modules.get(name) {
            return Ok(m.clone());
        }
        let (_, ptx) = embedded::MODULES.iter().find(|(n, _)| *n == name).ok_or_else(|| err(format!("no kernel file {name}.cu embedded")))?;
        let module = self.load(name, ptx[self.arch])?;
        modules.insert(name, module.clone());
        Ok(module)
    }

    /// Loads PTX text as the module of kernels/`name`.cu.
    fn load(&self, name: &str, ptx: &str) -> Result<Arc<CudaModule>> {
        self.ctx.load_module(Ptx::from_src(ptx)).map_err(|e| err(format!("loading {name}.cu: {}", e.to_string().replace('\n', " "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PTX the driver cannot load is a one-line error naming the module, not a panic. Runs only
    /// where a CUDA device answers (the GPU bundle); elsewhere it says why it skipped.
    #[test]
    fn unloadable_ptx_is_a_one_line_error_naming_it() {
        // SAFETY: only tries to dlopen the driver library.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return eprintln!("skipped: no CUDA driver");
        }
        let ctx = match CudaContext::new(0) {
            Ok(ctx) => ctx,
            Err(e) => return eprintln!("skipped: no CUDA device ({e})"),
        };
        let kernels = Kernels { ctx, arch: 0, modules: Mutex::default(), functions: Mutex::default() };
        let msg = match kernels.load("broken_on_purpose", ".version 8.0\n.target sm_80\nthis is not ptx\n") {
            Ok(_) => panic!("garbage PTX loaded"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains("loading broken_on_purpose.cu"), "{msg}");
        assert!(!msg.contains('\n'), "not one line: {msg}");
    }
}
