//! Build script. With feature `cuda`, compiles every kernels/*.cu to PTX for compute_80 and
//! compute_90 with NVRTC 12.9 (ptx_build/kernels.rs; toolchain lookup in ptx_build/toolchain.rs),
//! assembles each PTX with ptxas 12.9 into a cubin for sm_80 and sm_90, and writes
//! $OUT_DIR/cuda_kernels.rs, which src/backend/cuda/ptx.rs includes: the cubins and the
//! compute_80 PTX are embedded in the binary, so a GPU machine needs only its driver. A device
//! of compute capability 8.x loads the sm_80 cubin, 9.x the sm_90 one, any other the PTX
//! (JIT-compiled by the driver, which must then be CUDA 12.9 or newer for PTX ISA 8.8; cubins
//! load on any CUDA 12 driver). Without the toolchain the build still succeeds, with a warning,
//! and embeds no kernels (CudaBackend::new then says why). A kernel that fails to compile or
//! assemble fails the build. With feature `cuda-emu`, the kernels are also compiled for the host
//! emulator (ptx_build/emulator.rs).
#[path = "ptx_build/emulator.rs"]
mod emulator;
#[path = "ptx_build/kernels.rs"]
mod kernels;
#[path = "ptx_build/nvrtc.rs"]
mod nvrtc;
#[path = "ptx_build/toolchain.rs"]
mod toolchain;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=ptx_build");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-env-changed={}", toolchain::WHEELS_ENV);
    let repository = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    if std::env::var_os("CARGO_FEATURE_CUDA_EMU").is_some() {
        emulator::build(&repository, &out_dir).unwrap_or_else(|e| panic!("building the CUDA emulator: {e}"));
    }
    let module = match toolchain::Toolchain::find(&repository) {
        Ok(toolchain) => {
            println!("cargo:rerun-if-changed={}", toolchain.nvrtc().display());
            let nvrtc = nvrtc::Nvrtc::open(&toolchain.nvrtc()).unwrap_or_else(|e| panic!("compiling the CUDA kernels: {e}"));
            let compiled = kernels::compile_all(&nvrtc, &repository.join("kernels")).unwrap_or_else(|e| panic!("compiling the CUDA kernels: {e}"));
            embedded(&compiled, nvrtc.version, &toolchain.ptxas(), &out_dir)
        }
        Err(why) => {
            println!("cargo:warning=ditrt: no CUDA kernels embedded: {why}");
            format!("pub const KERNELS: Result<super::Embedded, &str> = Err({why:?});\n")
        }
    };
    let path = out_dir.join("cuda_kernels.rs");
    std::fs::write(&path, module).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn write(path: &Path, bytes: &str) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Assembles `ptx` for the real architecture `sm` into `cubin`, without debug information:
/// NVRTC's -lineinfo would more than double every cubin (ptxas embeds the PTX text for it).
fn assemble(ptxas: &Path, ptx: &Path, sm: &str, cubin: &Path) -> Result<(), String> {
    let out = Command::new(ptxas)
        .args([&format!("-arch={sm}"), "--suppress-debug-info", "-o"])
        .args([cubin, ptx])
        .output()
        .map_err(|e| format!("running {}: {e}", ptxas.display()))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!("ptxas -arch={sm} {}: {}", ptx.display(), String::from_utf8_lossy(&out.stderr).trim())),
    }
}

/// Writes each PTX text to $OUT_DIR/ptx/, assembles the cubins beside them and returns the
/// Rust source that embeds the compute_80 PTX and every cubin (src/backend/cuda/ptx.rs
/// `Embedded`); `nvrtc` is the (major, minor) CUDA version the PTX needs of a driver.
fn embedded(compiled: &[kernels::Compiled], nvrtc: (i32, i32), ptxas: &Path, out_dir: &Path) -> String {
    let ptx_dir = out_dir.join("ptx");
    std::fs::create_dir_all(&ptx_dir).unwrap_or_else(|e| panic!("{}: {e}", ptx_dir.display()));
    let ptx_path = |name: &str, arch: &str| ptx_dir.join(format!("{name}.{arch}.ptx"));
    // (module, major version, sm, PTX path, cubin path) for every assembly.
    let mut jobs = Vec::new();
    for kernel in compiled {
        for (arch, ptx) in kernels::ARCHS.iter().zip(&kernel.ptx) {
            let sm = arch.replace("compute_", "sm_");
            let major: u32 = sm["sm_".len()..].parse::<u32>().expect("architectures are compute_<number>") / 10;
            write(&ptx_path(&kernel.name, arch), ptx);
            let cubin = ptx_dir.join(format!("{}.{sm}.cubin", kernel.name));
            jobs.push((kernel.name.as_str(), major, sm, ptx_path(&kernel.name, arch), cubin));
        }
    }
    kernels::on_all_cores(&jobs, |(_, _, sm, ptx, cubin)| assemble(ptxas, ptx, sm, cubin))
        .into_iter()
        .collect::<Result<(), String>>()
        .unwrap_or_else(|e| panic!("assembling the CUDA kernels: {e}"));
    let path = |p: &PathBuf| format!("{:?}", p.display().to_string());
    let (major, minor) = nvrtc;
    let mut source =
        format!("pub const KERNELS: Result<super::Embedded, &str> = Ok(super::Embedded {{\n    ptx_cuda: ({major}, {minor}),\n    modules: &[\n");
    for kernel in compiled {
        let own: Vec<_> = jobs.iter().filter(|job| job.0 == kernel.name).collect();
        let cubins: Vec<String> = own.iter().map(|(_, major, _, _, cubin)| format!("({major}, include_bytes!({}))", path(cubin))).collect();
        let ptx = path(&ptx_path(&kernel.name, kernels::ARCHS[0]));
        writeln!(source, "        super::Module {{ name: {:?}, ptx: include_str!({ptx}), cubins: &[{}] }},", kernel.name, cubins.join(", "))
            .expect("writing to a String");
    }
    source.push_str("    ],\n});\n");
    source
}
