//! The Intel AMX kernel (Sapphire Rapids on): bf16 x bf16 products summed in f32 by
//! `tdpbf16ps`, one instruction per 16 x 16 f32 tile over 16 bf16 pairs of k (Intel SDM vol. 2,
//! TDPBF16PS: products exact, summed with round-to-nearest-even, denormals flushed, as
//! `vdpbf16ps`). Rust has no stable AMX intrinsics, so the tile instructions are inline assembly
//! on hard-coded tile registers: the compiler never allocates them (no AMX target feature is
//! enabled), so they keep their values between the `asm!` blocks of a tile.
use super::kernels::Microkernel;
use std::arch::asm;
use std::arch::x86_64::__cpuid_count;
use std::cell::Cell;
use std::sync::OnceLock;

/// bf16 pairs of k per tile row: 64 bytes, the widest tile row.
const TILE_STEPS: usize = 16;

/// Whether this CPU has AMX-BF16 and Linux lets this process use the tile data. Linux asks every
/// process to request it once (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, which
/// fails where the kernel or the hypervisor does not enable it); without it the first tile
/// instruction faults.
pub(super) fn usable() -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(|| {
        // CPUID.(EAX=7, ECX=0):EDX bit 22 AMX-BF16, bit 24 AMX-TILE (Intel SDM vol. 2A, CPUID).
        let edx = __cpuid_count(7, 0).edx;
        edx >> 22 & 1 == 1 && edx >> 24 & 1 == 1 && tile_data_permitted()
    })
}

#[cfg(target_os = "linux")]
fn tile_data_permitted() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: a request for a permission; it touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn tile_data_permitted() -> bool {
    false
}

/// The tile configuration (`ldtilecfg`'s 64 bytes): palette 1, all eight tiles 16 rows of 64
/// bytes (bytes 16.. hold each tile's row bytes as u16, bytes 48.. its rows).
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

static TILE_CONFIG: TileConfig = {
    let mut bytes = [0u8; 64];
    bytes[0] = 1;
    let mut t = 0;
    while t < 8 {
        bytes[16 + 2 * t] = (TILE_STEPS * 4) as u8;
        bytes[48 + t] = 16;
        t += 1;
    }
    TileConfig(bytes)
};

thread_local! {
    /// Whether this thread has loaded `TILE_CONFIG` (the tile state is per thread, and nothing
    /// else in the process configures it).
    static CONFIGURED: Cell<bool> = const { Cell::new(false) };
}

/// 32 x 32 f32 tile as 2 x 2 AMX tiles: tmm0-3 accumulate c (rows 0-15 | 16-31 by columns
/// 0-15 | 16-31), tmm4-5 hold a's two 16-row halves, tmm6-7 b's two 16-column halves. a's k
/// slices are packed line-major, so a tile row is 16 pairs of one row of a; b's steps are
/// already the pair-interleaved rows (`[pair][column]`) that `tdpbf16ps` takes as its b tile.
/// Per 16 steps: 4 tile loads (4 KiB, from L1 and L2) for 4 `tdpbf16ps`, each product issued
/// as soon as its two tiles are loaded.
pub struct Amx;

impl Microkernel for Amx {
    type Elem = u32;
    const MR: usize = 32;
    const NR: usize = 32;
    const STEP_ALIGN: usize = TILE_STEPS;
    const A_LINE_MAJOR: bool = true;
    // 128-row blocks over 768 steps (1536 k: one slice for most of the backbones' products; a
    // 384 KiB slice of a in L2, a 96 KiB b panel). On 2 Intel (Emerald Rapids) cores, 2 runs
    // each, 4096^3 bf16 GFLOP/s and DiT-XL/2 bf16 ms: KC 192 with 2, 4, 8, 16 panels 851-906 /
    // 461-464, 876-928 / 438-450, 876-887 / 453-458, 836-864 / 472-477; 4 panels with KC 64,
    // 128, 384, 576, 768: 798-880 / 479-483, 866-887 / 423-447, 946-995 / 431-439, 992-1061 /
    // 419-422, 990-1046 / 421-422. Prefetching b on a first meeting (as the AVX-512 kernels do)
    // gained nothing here.
    const MC_PANELS: usize = 4;
    const KC: usize = 768;

    unsafe fn tile(depth: usize, a: *const u32, b: *const u32, c: *mut f32, ldc: usize, accumulate: bool, _first_meeting: bool) {
        let (c_stride, a_stride, b_stride) = (ldc * 4, depth * 4, Self::NR * 4);
        let c_low = c.wrapping_add(16 * ldc);
        // SAFETY: bounds as `Microkernel::tile` requires (a's rows 16-31 start 16 * depth
        // pairs in, b's columns 16-31 64 bytes in, c's rows 16-31 at 16 * ldc); `Isa::Amx` is
        // only chosen where `usable` said so, and this thread's tiles are configured first.
        unsafe {
            CONFIGURED.with(|configured| {
                if !configured.get() {
                    asm!("ldtilecfg [{}]", in(reg) TILE_CONFIG.0.as_ptr(), options(nostack, readonly));
                    configured.set(true);
                }
            });
            if accumulate {
                asm!(
                    "tileloadd tmm0, [{c} + {s} * 1]",
                    "tileloadd tmm1, [{c} + {s} * 1 + 64]",
                    "tileloadd tmm2, [{l} + {s} * 1]",
                    "tileloadd tmm3, [{l} + {s} * 1 + 64]",
                    c = in(reg) c, l = in(reg) c_low, s = in(reg) c_stride,
                    options(nostack, readonly),
                );
            } else {
                asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
            }
            for s in (0..depth).step_by(TILE_STEPS) {
                asm!(
                    "tileloadd tmm4, [{a} + {sa} * 1]",
                    "tileloadd tmm6, [{b} + {sb} * 1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tileloadd tmm7, [{b} + {sb} * 1 + 64]",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tileloadd tmm5, [{a2} + {sa} * 1]",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a = in(reg) a.add(s), a2 = in(reg) a.add(16 * depth + s), b = in(reg) b.add(s * Self::NR),
                    sa = in(reg) a_stride, sb = in(reg) b_stride,
                    options(nostack, readonly),
                );
            }
            asm!(
                "tilestored [{c} + {s} * 1], tmm0",
                "tilestored [{c} + {s} * 1 + 64], tmm1",
                "tilestored [{l} + {s} * 1], tmm2",
                "tilestored [{l} + {s} * 1 + 64], tmm3",
                c = in(reg) c, l = in(reg) c_low, s = in(reg) c_stride,
                options(nostack),
            );
        }
    }
}
