//! The instruction set the GEMM microkernels use, detected once at run time, so one binary runs
//! the AVX-512 kernels on Zen 4/5 and Intel Xeons (AMX tiles for bf16 from Sapphire Rapids on),
//! AVX2 + FMA elsewhere on x86-64, and the portable kernel (which the compiler vectorises for the target, NEON on aarch64) anywhere.
use std::sync::OnceLock;

/// A microkernel family; the packed layouts depend on it (its register tile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust over fixed-size arrays, vectorised by the compiler for the build target.
    Portable,
    /// x86-64 AVX2 + FMA: 6 x 16 f32 register tile.
    Avx2,
    /// x86-64 AVX-512F: 8 x 48 f32 register tile.
    Avx512,
    /// AVX-512F plus AVX-512-BF16: bf16 x bf16 products summed in f32 by `vdpbf16ps`.
    Avx512Bf16,
    /// AVX-512 (f32 products as `Avx512`) plus Intel AMX: bf16 x bf16 products on 32 x 32 f32
    /// tiles of `tdpbf16ps`.
    Amx,
}

impl Isa {
    /// Every family this machine can run, best last (for tests of each kernel).
    pub fn available() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16, Isa::Amx].into_iter().filter(|isa| isa.runs_here()).collect()
    }

    /// The best family this machine runs (detected once); `DITRT_CPU_ISA` (portable, avx2,
    /// avx512, avx512bf16, amx) asks for a lesser one, e.g. to compare them.
    pub fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            let detected = *Isa::available().last().expect("the portable kernel runs everywhere");
            match std::env::var("DITRT_CPU_ISA").ok().as_deref().and_then(Isa::parse) {
                Some(asked) if asked.runs_here() => asked,
                _ => detected,
            }
        })
    }

    fn parse(name: &str) -> Option<Isa> {
        Some(match name {
            "portable" => Isa::Portable,
            "avx2" => Isa::Avx2,
            "avx512" => Isa::Avx512,
            "avx512bf16" => Isa::Avx512Bf16,
            "amx" => Isa::Amx,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Avx512Bf16 => "avx512bf16",
            Isa::Amx => "amx",
        }
    }

    /// Whether bf16 x bf16 products run as such (bf16 weights then stay bf16 when packed).
    pub fn multiplies_bf16(self) -> bool {
        matches!(self, Isa::Avx512Bf16 | Isa::Amx)
    }

    fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Isa::Portable => true,
                Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
                Isa::Avx512 => is_x86_feature_detected!("avx512f"),
                Isa::Avx512Bf16 => is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16"),
                Isa::Amx => Isa::Avx512Bf16.runs_here() && super::amx::usable(),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Portable
        }
    }
}
