//! `ptx_tool KERNEL_DIR OUT_DIR`: compiles every kernel like the `cuda` build does and writes
//! OUT_DIR/<kernel>.<arch>.ptx, then prints the ptxas path of the toolchain it used. Built with
//! plain rustc by scripts/check_kernels.sh, so checking the kernels needs no crate build.
mod kernels;
mod nvrtc;
mod toolchain;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn run(kernel_dir: &Path, out_dir: &Path) -> Result<PathBuf, String> {
    let repository = kernel_dir.parent().unwrap_or(Path::new("."));
    let toolchain = toolchain::Toolchain::find(repository)?;
    let nvrtc = nvrtc::Nvrtc::open(&toolchain.nvrtc())?;
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    for compiled in kernels::compile_all(&nvrtc, kernel_dir)? {
        for (arch, ptx) in kernels::ARCHS.iter().zip(&compiled.ptx) {
            let path = out_dir.join(format!("{}.{arch}.ptx", compiled.name));
            std::fs::write(&path, ptx).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(toolchain.ptxas())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kernel_dir, out_dir] = args.as_slice() else {
        eprintln!("usage: ptx_tool KERNEL_DIR OUT_DIR");
        return ExitCode::from(2);
    };
    match run(Path::new(kernel_dir), Path::new(out_dir)) {
        Ok(ptxas) => {
            println!("{}", ptxas.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ptx_tool: {e}");
            ExitCode::FAILURE
        }
    }
}
