//! Loops compiled for the best vector unit the CPU has, chosen at run time like the GEMM
//! kernels (`gemm::Isa`): the build target is plain x86-64 (SSE2), so without this every
//! elementwise loop would run 4 lanes wide on a CPU with 16.
#[cfg(target_arch = "x86_64")]
use super::gemm::Isa;

/// Runs `f` compiled for AVX-512, AVX2 + FMA, or the build target, whichever this CPU runs:
/// `f` (inlined into one of the instances below) has its loops vectorised for that unit.
#[inline(always)]
pub(super) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    match Isa::best() {
        // SAFETY: `Isa::best` reports only families whose features this CPU has.
        Isa::Avx512 | Isa::Avx512Bf16 | Isa::Amx => return unsafe { avx512(f) },
        Isa::Avx2 => return unsafe { avx2(f) },
        Isa::Portable => {}
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Defines `fn $name(args)` whose body is compiled for AVX-512, AVX2 + FMA, or the build target,
/// chosen at run time as `vectorized` chooses. For bodies too big for the compiler to inline
/// through `vectorized`'s closure: a closure that stays a call of its own is compiled for the
/// build target (SSE2), whatever the caller's features (the Winograd transforms measured so).
macro_rules! vectorized_fn {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
            fn avx512($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            match $crate::backend::cpu::gemm::Isa::best() {
                // SAFETY: `Isa::best` reports only families whose features this CPU has.
                $crate::backend::cpu::gemm::Isa::Avx512 | $crate::backend::cpu::gemm::Isa::Avx512Bf16 | $crate::backend::cpu::gemm::Isa::Amx => return unsafe { avx512($($arg),*) },
                $crate::backend::cpu::gemm::Isa::Avx2 => return unsafe { avx2($($arg),*) },
                $crate::backend::cpu::gemm::Isa::Portable => {}
            }
            body($($arg),*)
        }
    };
}
pub(super) use vectorized_fn;

/// Lanes of the partial sums and maxima below: one AVX-512 vector.
const LANES: usize = 16;

/// Sum of `xs` over LANES interleaved partial sums (so it vectorises: a serial float sum
/// cannot be reordered by the compiler).
#[inline(always)]
pub(super) fn sum(xs: &[f32]) -> f32 {
    let mut partial = [0.0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        partial.iter_mut().zip(chunk).for_each(|(p, &x)| *p += x);
    }
    partial.iter().sum::<f32>() + tail
}

/// Maximum of `xs` (-inf for none), over LANES partial maxima.
#[inline(always)]
pub(super) fn max(xs: &[f32]) -> f32 {
    let mut partial = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for chunk in chunks {
        partial.iter_mut().zip(chunk).for_each(|(p, &x)| *p = p.max(x));
    }
    partial.iter().copied().fold(tail, f32::max)
}
