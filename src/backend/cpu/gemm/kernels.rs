//! Register-tile microkernels: c[MR x NR] (row stride `ldc`) = (or +=) a_panel · b_panel over
//! `depth` packed steps. A step of the f32 kernels is one k; a step of the bf16 kernel is a pair
//! of k (`vdpbf16ps` sums two bf16 products into each f32 lane). Panels are packed by `pack`:
//! a as [depth][MR], b as [depth][NR], so every step reads MR broadcasts and NR/16 vectors.
use super::pack::{Layout, PackElem, Tiles};

/// Which operand panels are packed for: a's are a kernel's MR rows wide, b's its NR columns.
#[derive(Clone, Copy)]
pub(super) enum Side {
    A,
    B,
}

/// One microkernel: its register tile and the element type of its packed panels.
pub(super) trait Microkernel {
    /// f32 for the f32 kernels; u32 holding a (k even, k odd) bf16 pair for the bf16 kernel.
    type Elem: PackElem;
    const MR: usize;
    const NR: usize;
    /// At most this many a panels (MR rows each) per task block: the block's k slice of a
    /// stays in L2 while every b panel of the task meets it, so each b panel is fetched from
    /// memory once per block.
    const MC_PANELS: usize = 8;
    /// Packed steps per k slice (a 48-column f32 b panel of it: 36 KiB, in a 48 KiB L1).
    const KC: usize = 192;
    /// Some(side): both operands' panels are stored as side x side tiles, a's line-major and
    /// b's step-major (`Tiles`; AMX's 16 x 16), and KC is a multiple of the side.
    const TILE_SIDE: Option<usize> = None;

    /// How this kernel's panels on `side` are packed.
    fn layout(side: Side) -> Layout {
        let (width, line_major) = match side {
            Side::A => (Self::MR, true),
            Side::B => (Self::NR, false),
        };
        Layout { width, tiles: Self::TILE_SIDE.map(|side| Tiles { side, line_major }) }
    }

    /// `first_meeting`: no tile of this task has read this b panel's steps yet, so they come from
    /// L3 or memory rather than L1 (kernels that prefetch do it then).
    ///
    /// # Safety
    /// `a` is valid for `depth * MR` reads, `b` for `depth * NR`, `c` for MR rows of NR f32 at
    /// row stride `ldc` (read when `accumulate`), `depth` is whole tiles (of TILE_SIDE steps), and the
    /// CPU has the kernel's features.
    unsafe fn tile(depth: usize, a: *const Self::Elem, b: *const Self::Elem, c: *mut f32, ldc: usize, accumulate: bool, first_meeting: bool);
}

/// The portable kernel: fixed-size arrays the compiler vectorises for the build target.
pub(super) struct Portable;

impl Microkernel for Portable {
    type Elem = f32;
    const MR: usize = 4;
    const NR: usize = 16;

    unsafe fn tile(depth: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool, _first_meeting: bool) {
        let mut acc = [[0.0f32; 16]; 4];
        // SAFETY: bounds as the trait requires.
        unsafe {
            if accumulate {
                for (i, row) in acc.iter_mut().enumerate() {
                    row.copy_from_slice(std::slice::from_raw_parts(c.add(i * ldc), 16));
                }
            }
            for p in 0..depth {
                let bp = &*b.add(p * 16).cast::<[f32; 16]>();
                let ap = &*a.add(p * 4).cast::<[f32; 4]>();
                for (row, &ai) in acc.iter_mut().zip(ap) {
                    for (r, &bj) in row.iter_mut().zip(bp) {
                        *r += ai * bj;
                    }
                }
            }
            for (i, row) in acc.iter().enumerate() {
                std::slice::from_raw_parts_mut(c.add(i * ldc), 16).copy_from_slice(row);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use x86::{Avx2, Avx512, Avx512Bf16};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Microkernel;
    use std::arch::x86_64::*;

    /// AVX2 + FMA: 6 rows x 2 ymm = 12 accumulators, 2 b vectors and a broadcast (15 of 16).
    pub struct Avx2;

    impl Microkernel for Avx2 {
        type Elem = f32;
        const MR: usize = 6;
        const NR: usize = 16;
        // 192-row blocks (a 192 x 192 slice of a: 144 KiB, in a 512 KiB L2; BLIS's Zen
        // blocking is 144 x 256) fetch each b panel a quarter as often as 48-row ones. On a
        // 2-core Zen 3 EPYC, alternating runs: 2048^3 1.09-1.17x, 4096^3 1.01-1.20x, DiT-XL/2
        // 1.07-1.18x, U-ViT-H/2 1.07-1.25x faster; a KC of 256 or 384 was no better.
        const MC_PANELS: usize = 32;

        unsafe fn tile(depth: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool, _first_meeting: bool) {
            // SAFETY: forwarded contract; `Isa::Avx2` is only chosen where avx2 and fma run.
            unsafe { avx2_f32(depth, a, b, c, ldc, accumulate) }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2_f32(depth: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool) {
        let mut acc = [[_mm256_setzero_ps(); 2]; 6];
        // SAFETY: bounds as the trait requires.
        unsafe {
            if accumulate {
                for (i, row) in acc.iter_mut().enumerate() {
                    *row = [_mm256_loadu_ps(c.add(i * ldc)), _mm256_loadu_ps(c.add(i * ldc + 8))];
                }
            }
            for p in 0..depth {
                let (b0, b1) = (_mm256_loadu_ps(b.add(p * 16)), _mm256_loadu_ps(b.add(p * 16 + 8)));
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = _mm256_broadcast_ss(&*a.add(p * 6 + i));
                    *row = [_mm256_fmadd_ps(ai, b0, row[0]), _mm256_fmadd_ps(ai, b1, row[1])];
                }
            }
            for (i, row) in acc.iter().enumerate() {
                _mm256_storeu_ps(c.add(i * ldc), row[0]);
                _mm256_storeu_ps(c.add(i * ldc + 8), row[1]);
            }
        }
    }

    /// AVX-512F: 8 rows x 3 zmm = 24 accumulators, 3 b vectors and a broadcast (28 of 32): 11
    /// loads per 24 FMAs, and 8-row panels waste little on short a operands (attention's
    /// 32-row query tiles). Measured against 14 x 32 (31 registers): within noise on large
    /// GEMMs, faster on the backbones.
    pub struct Avx512;

    impl Microkernel for Avx512 {
        type Elem = f32;
        const MR: usize = 8;
        const NR: usize = 48;

        unsafe fn tile(depth: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool, first_meeting: bool) {
            // SAFETY: forwarded contract; `Isa::Avx512` is only chosen where avx512f runs.
            unsafe { avx512_f32(depth, a, b, c, ldc, accumulate, first_meeting) }
        }
    }

    /// AVX-512-BF16: as `Avx512`, but each step is a pair of k: `vdpbf16ps` adds
    /// a[2q]·b[2q] + a[2q+1]·b[2q+1] to every f32 lane (bf16 products exact in f32, summed with
    /// round-to-nearest-even, denormal inputs flushed: Intel SDM, VDPBF16PS).
    pub struct Avx512Bf16;

    impl Microkernel for Avx512Bf16 {
        type Elem = u32;
        const MR: usize = 8;
        const NR: usize = 48;

        unsafe fn tile(depth: usize, a: *const u32, b: *const u32, c: *mut f32, ldc: usize, accumulate: bool, first_meeting: bool) {
            // SAFETY: forwarded contract; `Isa::Avx512Bf16` is only chosen where it runs.
            unsafe { avx512_bf16(depth, a, b, c, ldc, accumulate, first_meeting) }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_f32(depth: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool, first_meeting: bool) {
        // SAFETY: forwarded; inlined here, so it runs with this function's features.
        unsafe { avx512_tile::<F32Fma, { Avx512::MR }, { Avx512::NR / 16 }>(depth, a, b, c, ldc, accumulate, first_meeting) }
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn avx512_bf16(depth: usize, a: *const u32, b: *const u32, c: *mut f32, ldc: usize, accumulate: bool, first_meeting: bool) {
        // SAFETY: forwarded; inlined here, so it runs with this function's features.
        unsafe { avx512_tile::<Bf16Dot, { Avx512Bf16::MR }, { Avx512Bf16::NR / 16 }>(depth, a, b, c, ldc, accumulate, first_meeting) }
    }

    /// One packed step of a 512-bit kernel: b's 16 lanes at `b`, a's broadcast element, the
    /// multiply-add into 16 f32 accumulators.
    trait Step512 {
        type Elem;
        type B: Copy;
        unsafe fn load_b(b: *const Self::Elem) -> Self::B;
        unsafe fn madd(acc: __m512, a: *const Self::Elem, b: Self::B) -> __m512;
    }

    struct F32Fma;

    impl Step512 for F32Fma {
        type Elem = f32;
        type B = __m512;
        #[inline(always)]
        unsafe fn load_b(b: *const f32) -> __m512 {
            // SAFETY: 16 f32 readable at b (caller); avx512f present (inlined into a kernel).
            unsafe { _mm512_loadu_ps(b) }
        }
        #[inline(always)]
        unsafe fn madd(acc: __m512, a: *const f32, b: __m512) -> __m512 {
            // SAFETY: as `load_b`.
            unsafe { _mm512_fmadd_ps(_mm512_set1_ps(*a), b, acc) }
        }
    }

    struct Bf16Dot;

    impl Step512 for Bf16Dot {
        type Elem = u32;
        type B = __m512bh;
        #[inline(always)]
        unsafe fn load_b(b: *const u32) -> __m512bh {
            // SAFETY: 16 pairs readable at b (caller); __m512i and __m512bh are both 64 bytes.
            unsafe { std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(b.cast())) }
        }
        #[inline(always)]
        unsafe fn madd(acc: __m512, a: *const u32, b: __m512bh) -> __m512 {
            // SAFETY: as `load_b`; avx512bf16 present (inlined into `avx512_bf16`).
            unsafe { _mm512_dpbf16_ps(acc, std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(*a as i32)), b) }
        }
    }

    /// Steps ahead that `avx512_tile` prefetches b on a first meeting: a step reads NV lines
    /// (192 bytes), and a tile of 8 rows uses them for 24 multiply-adds (12 cycles at two FMAs a
    /// cycle), too fast for the hardware prefetchers to bring a panel from memory. On 2 Intel
    /// (Emerald Rapids) cores, 3 alternating rounds: DiT-XL/2 b1 1.12-1.17x, U-ViT-H/2 1.14-1.15x,
    /// DiT-S/2 b1 1.02-1.11x, 4096^3 1.12-1.16x, DiT-XL/2 bf16 1.08-1.12x faster; 8 to 32 steps
    /// were alike, and prefetching on every meeting gained less (the panel is in L1 by then).
    const PREFETCH_STEPS: usize = 16;

    /// The MR x 16·NV register tile over `depth` steps of `S`; on a `first_meeting`, b's lines
    /// `PREFETCH_STEPS` steps ahead are prefetched into L1 (past the panel's end is harmless:
    /// a prefetch does not fault).
    #[inline(always)]
    unsafe fn avx512_tile<S: Step512, const MR: usize, const NV: usize>(
        depth: usize,
        a: *const S::Elem,
        b: *const S::Elem,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        first_meeting: bool,
    ) {
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        // SAFETY: bounds as `Microkernel::tile` requires.
        unsafe {
            if accumulate {
                for (i, row) in acc.iter_mut().enumerate() {
                    for (v, r) in row.iter_mut().enumerate() {
                        *r = _mm512_loadu_ps(c.add(i * ldc + 16 * v));
                    }
                }
            }
            for p in 0..depth {
                if first_meeting {
                    for v in 0..NV {
                        _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add((p + PREFETCH_STEPS) * 16 * NV + 16 * v).cast::<i8>());
                    }
                }
                let mut bv = [S::load_b(b.add(p * 16 * NV)); NV];
                for (v, bv) in bv.iter_mut().enumerate().skip(1) {
                    *bv = S::load_b(b.add(p * 16 * NV + 16 * v));
                }
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = a.add(p * MR + i);
                    for (r, &bv) in row.iter_mut().zip(&bv) {
                        *r = S::madd(*r, ai, bv);
                    }
                }
            }
            for (i, row) in acc.iter().enumerate() {
                for (v, r) in row.iter().enumerate() {
                    _mm512_storeu_ps(c.add(i * ldc + 16 * v), *r);
                }
            }
        }
    }
}
