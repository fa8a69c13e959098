//! The loop nest around a microkernel (BLIS order): tasks own a block of MC_PANELS a-panels by
//! NC_PANELS b-panels of c; inside, k runs in KC-step slices, and for each slice every b panel
//! (KC x NR, ~32 KiB: stays in L1) meets every a panel of the block (MC x KC: stays in L2).
//! A task accumulates into its own block buffer (whole register tiles, so edge tiles need no
//! special case; its row stride is padded off a power of two, so the rows of a tile do not
//! share cache sets as they would in a c of 2048 or 4096 columns) and writes c once at the end.
use super::kernels::Microkernel;
use super::pack::Packed;
use rayon::prelude::*;

/// Packed steps per k slice.
const KC: usize = 256;
/// a panels (MR rows each) per task block.
const MC_PANELS: usize = 8;
/// b panels (NR columns each) per task block.
const NC_PANELS: usize = 8;
/// Extra f32 per block-buffer row: 64 bytes, so rows 2^k bytes apart do not alias in cache.
const ROW_PAD: usize = 16;

/// c: the output, shared by tasks that write disjoint blocks.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: tasks write disjoint blocks of c (see `multiply`).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// Element `i` of c (a method, so closures capture the Sync wrapper, not the raw pointer).
    ///
    /// # Safety
    /// `i` lies inside c.
    unsafe fn at(self, i: usize) -> *mut f32 {
        // SAFETY: forwarded.
        unsafe { self.0.add(i) }
    }
}

/// c[m x n] (row-major, dense) = (or +=) a · b for `a` packed in K::MR-row panels and `b` in
/// K::NR-column panels over the same depth.
pub(super) fn multiply<K: Microkernel>(
    a: &Packed<K::Elem>,
    b: &Packed<K::Elem>,
    m: usize,
    n: usize,
    c: &mut [f32],
    accumulate: bool,
    parallel: bool,
) {
    assert!(
        a.width == K::MR && b.width == K::NR && a.depth == b.depth && c.len() == m * n,
        "cpu backend bug: gemm operands packed for another kernel"
    );
    let (m_blocks, n_blocks) = (m.div_ceil(K::MR * MC_PANELS), n.div_ceil(K::NR * NC_PANELS));
    let ld = NC_PANELS * K::NR + ROW_PAD;
    let out = Out(c.as_mut_ptr());
    let task = |block: &mut Vec<f32>, t: usize| {
        let (mb, nb) = (t / n_blocks, t % n_blocks);
        let (row0, col0) = (mb * MC_PANELS * K::MR, nb * NC_PANELS * K::NR);
        let (rows, cols) = ((MC_PANELS * K::MR).min(m - row0), (NC_PANELS * K::NR).min(n - col0));
        // SAFETY (both copies): rows x cols from (row0, col0) lie inside c, a block owned by
        // this task alone; the block buffer holds MC_PANELS * MR rows of `ld`.
        if accumulate {
            for r in 0..rows {
                unsafe { std::ptr::copy_nonoverlapping(out.at((row0 + r) * n + col0), block[r * ld..].as_mut_ptr(), cols) };
            }
        }
        for k0 in (0..a.depth).step_by(KC) {
            let kc = KC.min(a.depth - k0);
            for jp in 0..cols.div_ceil(K::NR) {
                for ip in 0..rows.div_ceil(K::MR) {
                    let tile = block[ip * K::MR * ld + jp * K::NR..].as_mut_ptr();
                    // SAFETY: the panels hold kc steps from k0; the tile's MR rows of NR lie in
                    // the block buffer; the kernel's ISA was detected (Isa::best).
                    unsafe { K::tile(kc, a.at(mb * MC_PANELS + ip, k0), b.at(nb * NC_PANELS + jp, k0), tile, ld, accumulate || k0 > 0) }
                }
            }
        }
        for r in 0..rows {
            unsafe { std::ptr::copy_nonoverlapping(block[r * ld..].as_ptr(), out.at((row0 + r) * n + col0), cols) };
        }
    };
    let buffer = || vec![0.0f32; MC_PANELS * K::MR * ld];
    if parallel {
        (0..m_blocks * n_blocks).into_par_iter().for_each_init(buffer, task);
    } else {
        let mut block = buffer();
        (0..m_blocks * n_blocks).for_each(|t| task(&mut block, t));
    }
}
