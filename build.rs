//! Build script. With feature `cuda`, compiles every kernels/*.cu to PTX for compute_80 and
//! compute_90 with NVRTC 12.9 (ptx_build/kernels.rs; toolchain lookup in ptx_build/toolchain.rs) and
//! writes $OUT_DIR/cuda_kernels.rs, which src/backend/cuda/ptx.rs includes: the PTX is embedded
//! in the binary, so a GPU machine needs only its driver. Without the toolchain the build still
//! succeeds, with a warning, and embeds no kernels (CudaBackend::new then says why). A kernel
//! that fails to compile fails the build.
#[path = "ptx_build/kernels.rs"]
mod kernels;
#[path = "ptx_build/nvrtc.rs"]
mod nvrtc;
// Shared with ptx_build/ptx_tool.rs, which also uses the ptxas path.
#[allow(dead_code)]
#[path = "ptx_build/toolchain.rs"]
mod toolchain;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-env-changed={}", toolchain::WHEELS_ENV);
    let repository = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let module = match toolchain::Toolchain::find(&repository) {
        Ok(toolchain) => {
            println!("cargo:rerun-if-changed={}", toolchain.nvrtc().display());
            let compiled = nvrtc::Nvrtc::open(&toolchain.nvrtc())
                .and_then(|nvrtc| kernels::compile_all(&nvrtc, &repository.join("kernels")))
                .unwrap_or_else(|e| panic!("compiling the CUDA kernels: {e}"));
            embedded(&compiled, &out_dir)
        }
        Err(why) => {
            println!("cargo:warning=ditrt: no CUDA kernels embedded: {why}");
            format!("pub const MODULES: &[(&str, [&str; 2])] = &[];\npub const MISSING: Option<&str> = Some({why:?});\n")
        }
    };
    let path = out_dir.join("cuda_kernels.rs");
    std::fs::write(&path, module).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Writes each PTX text to $OUT_DIR/ptx/ and returns the Rust source that embeds them.
fn embedded(compiled: &[kernels::Compiled], out_dir: &Path) -> String {
    let ptx_dir = out_dir.join("ptx");
    std::fs::create_dir_all(&ptx_dir).unwrap_or_else(|e| panic!("{}: {e}", ptx_dir.display()));
    let mut source = format!("/// Kernel files of kernels/: (name, PTX for {:?}).\npub const MODULES: &[(&str, [&str; 2])] = &[\n", kernels::ARCHS);
    for kernel in compiled {
        let texts: Vec<String> = kernels::ARCHS
            .iter()
            .zip(&kernel.ptx)
            .map(|(arch, ptx)| {
                let path = ptx_dir.join(format!("{}.{arch}.ptx", kernel.name));
                std::fs::write(&path, ptx).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                format!("include_str!({:?})", path.display().to_string())
            })
            .collect();
        writeln!(source, "    ({:?}, [{}]),", kernel.name, texts.join(", ")).expect("writing to a String");
    }
    source.push_str("];\n/// Why no kernels are embedded (None: they are).\npub const MISSING: Option<&str> = None;\n");
    source
}
