//! Where the CUDA 12.9 compiler pieces come from: the pinned PyPI wheels
//! nvidia-cuda-nvrtc-cu12==12.9.86 (NVRTC) and nvidia-cuda-nvcc-cu12==12.9.86 (ptxas), installed
//! into one folder that holds `nvidia/` (scripts/cuda_wheels.sh). The first of these that
//! holds both is used:
//!   1. $DITRT_CUDA_WHEELS;
//!   2. <repository>/target/cuda-wheels, where scripts/cuda_wheels.sh installs them;
//!   3. the site-packages of `python3` (pip install into the current environment).
//!
//! NVRTC and ptxas stay on one version (12.9): ptxas 12.9 rejects PTX from NVRTC 13, and PTX
//! ISA 8.8 runs on every driver from CUDA 12.9 on, CUDA 13.0's included.
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming the wheel folder.
pub const WHEELS_ENV: &str = "DITRT_CUDA_WHEELS";

pub struct Toolchain {
    /// The folder holding `nvidia/`.
    pub root: PathBuf,
}

impl Toolchain {
    /// The first wheel folder that holds NVRTC and ptxas, or why none does.
    pub fn find(repository: &Path) -> Result<Toolchain, String> {
        let mut tried = Vec::new();
        let env = std::env::var_os(WHEELS_ENV).map(PathBuf::from);
        let candidates = env.into_iter().chain([repository.join("target/cuda-wheels")]).chain(python_site_packages());
        for root in candidates {
            let toolchain = Toolchain { root };
            if toolchain.nvrtc().is_file() && toolchain.ptxas().is_file() {
                return Ok(toolchain);
            }
            tried.push(toolchain.root.display().to_string());
        }
        Err(format!("NVRTC and ptxas 12.9 not found (looked in ${WHEELS_ENV}, {}); run scripts/cuda_wheels.sh or set {WHEELS_ENV}", tried.join(", ")))
    }

    pub fn nvrtc(&self) -> PathBuf {
        self.root.join("nvidia/cuda_nvrtc/lib/libnvrtc.so.12")
    }

    pub fn ptxas(&self) -> PathBuf {
        self.root.join("nvidia/cuda_nvcc/bin/ptxas")
    }
}

/// The folder above the `nvidia` namespace package of python3's NVRTC wheel, if any.
fn python_site_packages() -> Option<PathBuf> {
    let out = Command::new("python3").args(["-c", "import nvidia.cuda_nvrtc as m; print(list(m.__path__)[0])"]).output().ok()?;
    let package = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    out.status.success().then(|| package.parent()?.parent().map(Path::to_path_buf))?
}
