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
/// 0-15 | 16-31), tmm4-5 hold a's two 16-row halves, tmm6-7 b's two 16-column halves. Both
/// operands are packed as contiguous 16 x 16 tiles of bf16 pairs (`Tiles`): a's line-major (a
/// tile row is 16 pairs of one row of a), b's step-major (the pair-interleaved rows, k even in
/// the low half, that `tdpbf16ps` takes as its b tile). Per 16 steps: 4 dense 1 KiB tile loads
/// (from L1 and L2) for 4 `tdpbf16ps`, each product issued as soon as its two tiles are loaded.
pub struct Amx;

impl Microkernel for Amx {
    type Elem = u32;
    const MR: usize = 32;
    const NR: usize = 32;
    const TILE_SIDE: Option<usize> = Some(TILE_STEPS);
    // 256-row blocks over 768 steps (1536 k: one slice for most of the backbones' products; a
    // 768 KiB slice of a in a 2 MiB L2, a 96 KiB b panel). On 2 Intel (Emerald Rapids) cores,
    // 2 runs each, 4096^3 bf16 GFLOP/s / DiT-XL/2 bf16 ms / U-ViT-H/2 bf16 ms, with these tiles:
    // 4 panels and KC 384: 1031-1053 / 413-420 / 537-553; 768: 1084-1184 / 384-401 / 509-534;
    // 1536: 1147-1290 / 390-392 / 492-503; 2 panels, 768: 1082-1180 / 410-413 / 507-509; 8 panels,
    // 768: 1110-1112 / 392-397 / 470-474; 1536: 1059-1137 / 378-412 / 460-463; 16 panels, 768:
    // 1047-1078 / 437-444 / 494-514. With a's rows 3 KiB apart instead of tiles, the best
    // (4 x 768) was 990-1127 / 404-422 / 514-542, and a b prefetch on first meetings (as the
    // AVX-512 kernels do) gained nothing.
    const MC_PANELS: usize = 8;
    const KC: usize = 768;

    unsafe fn tile(depth: usize, a: *const u32, b: *const u32, c: *mut f32, ldc: usize, accumulate: bool, _first_meeting: bool) {
        // A tile's rows are 64 bytes apart; the second tile of a chunk of 16 steps follows the
        // first (a's rows 16-31, b's columns 16-31: 256 pairs in).
        let (c_stride, row_bytes, second) = (ldc * 4, TILE_STEPS * 4, TILE_STEPS * TILE_STEPS);
        let c_low = c.wrapping_add(16 * ldc);
        // SAFETY: bounds as `Microkernel::tile` requires (chunk s of a panel: 32 x 16 pairs
        // from s * 32; c's rows 16-31 at 16 * ldc); `Isa::Amx` is only chosen where `usable`
        // said so, and this thread's tiles are configured first.
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
                let (a, b) = (a.add(s * Self::MR), b.add(s * Self::NR));
                asm!(
                    "tileloadd tmm4, [{a} + {r} * 1]",
                    "tileloadd tmm6, [{b} + {r} * 1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tileloadd tmm7, [{b2} + {r} * 1]",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tileloadd tmm5, [{a2} + {r} * 1]",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a = in(reg) a, a2 = in(reg) a.add(second), b = in(reg) b, b2 = in(reg) b.add(second), r = in(reg) row_bytes,
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
