//! Compiles every kernels/*.cu to PTX for every target architecture with NVRTC. The .cuh files
//! of kernels/ are the only headers (no CUDA headers are needed). build.rs embeds the result;
//! ptx_build/ptx_tool.rs writes it out for scripts/check_kernels.sh.
use std::path::{Path, PathBuf};

use super::nvrtc::Nvrtc;

/// Virtual architectures the PTX is made for: Ampere and Hopper. build.rs assembles each for
/// its real architecture (sm_80, sm_90: the cubins a device of that major version loads) and
/// embeds the compute_80 PTX as the fallback the driver JIT-compiles for any other device.
pub const ARCHS: [&str; 2] = ["compute_80", "compute_90"];

/// One compiled kernel file: `name` is the file stem (the module name at run time), `ptx`
/// holds one PTX text per entry of `ARCHS`.
pub struct Compiled {
    pub name: String,
    pub ptx: Vec<String>,
}

/// NVRTC options for `arch`: exact math (no fast-math: the CPU reference is the bar), line
/// info for compute-sanitizer and profilers.
pub fn options(arch: &str) -> Vec<String> {
    vec![format!("--gpu-architecture={arch}"), "--std=c++17".into(), "-lineinfo".into()]
}

/// Files of `dir` ending in `.ext`, sorted.
pub fn files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).filter(|p| p.extension().is_some_and(|x| x == ext)).collect();
    paths.sort();
    Ok(paths)
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name().expect("listed files have names").to_string_lossy().into_owned()
}

/// Every kernel of `dir` compiled for every architecture, on all cores (NVRTC programs are
/// independent); the first failure is the error.
pub fn compile_all(nvrtc: &Nvrtc, dir: &Path) -> Result<Vec<Compiled>, String> {
    if nvrtc.version.0 != 12 {
        let (major, minor) = nvrtc.version;
        return Err(format!("NVRTC {major}.{minor} found, 12.x needed (its PTX must suit ptxas 12.9 and CUDA 12.9+ drivers)"));
    }
    let headers = files(dir, "cuh")?.iter().map(|p| Ok((file_name(p), read(p)?))).collect::<Result<Vec<_>, String>>()?;
    let sources = files(dir, "cu")?;
    let compile = |path: &PathBuf| -> Result<Compiled, String> {
        let source = read(path)?;
        let name = file_name(path);
        let ptx = ARCHS.iter().map(|arch| nvrtc.compile(&name, &source, &headers, &options(arch))).collect::<Result<_, _>>()?;
        Ok(Compiled { name: name.trim_end_matches(".cu").to_string(), ptx })
    };
    on_all_cores(&sources, compile).into_iter().collect()
}

/// `f` of every item, in order, computed on all cores (a work queue: items vary in cost).
pub fn on_all_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return done;
                        };
                        done.push((i, f(item)));
                    }
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a worker thread panicked")).collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}
