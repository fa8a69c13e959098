//! The loop nest around a microkernel (BLIS order): tasks own a block of the kernel's MC_PANELS
//! a-panels by NC_PANELS b-panels of c; inside, k runs in the kernel's KC-step slices, and for
//! each slice every b panel (KC x NR: 192 x 48 f32 = 36 KiB for AVX-512, 192 x 16 = 12 KiB for
//! AVX2; stays in L1) meets every a panel of the block (MC x KC: stays in L2).
//! A task accumulates into its own block buffer (whole register tiles, so edge tiles need no
//! special case; its row stride is padded off a power of two, so the rows of a tile do not
//! share cache sets as they would in a c of 2048 or 4096 columns) and hands each finished row
//! segment to the caller's epilogue (bias, activation, residual, dtype: no second pass over c).
use super::kernels::{Microkernel, Side};
use super::pack::Packed;
use rayon::prelude::*;
use std::cell::RefCell;

/// At most this many b panels (NR columns each) per task block.
const NC_PANELS: usize = 8;
/// Tasks per worker thread wanted (when the product is big enough), so uneven blocks and a
/// busy core even out.
const TASKS_PER_THREAD: usize = 4;
/// f32 per cache line.
const LINE_F32: usize = 16;
/// Extra f32 per block-buffer row: 64 bytes, so rows 2^k bytes apart do not alias in cache.
const ROW_PAD: usize = 16;

/// Hands over (or fills) `values`, a segment of row `row` of c starting at column `col`.
pub(in crate::backend::cpu) type RowFn<'f> = dyn Fn(usize, usize, &mut [f32]) + Sync + 'f;

/// c[m x n] = a · b for `a` packed in K::MR-row panels and `b` in K::NR-column panels over the
/// same depth, plus what `load` puts in (none: zero). Each finished segment of c goes to
/// `store` exactly once; tasks hand over disjoint segments.
pub(super) fn multiply<K: Microkernel>(
    a: &Packed<K::Elem>,
    b: &Packed<K::Elem>,
    (m, n): (usize, usize),
    load: Option<&RowFn>,
    store: &RowFn,
    parallel: bool,
) {
    assert!(
        a.layout == K::layout(Side::A) && b.layout == K::layout(Side::B) && a.depth == b.depth && K::KC.is_multiple_of(K::TILE_SIDE.unwrap_or(1)),
        "cpu backend bug: gemm operands packed for another kernel"
    );
    let (m_panels, n_panels) = (m.div_ceil(K::MR), n.div_ceil(K::NR));
    let threads = if parallel { rayon::current_num_threads() } else { 1 };
    let (m_blocks, n_blocks) = blocks(m_panels, n_panels, threads, K::MC_PANELS);
    let ld = NC_PANELS * K::NR + ROW_PAD;
    let task = |block: &mut [f32], t: usize| {
        let (mb, nb) = (t / n_blocks, t % n_blocks);
        // Block i of `count` over `panels`: panels [i * panels / count, (i + 1) * panels / count).
        let range = |i: usize, count: usize, panels: usize| i * panels / count..(i + 1) * panels / count;
        let (a_panels, b_panels) = (range(mb, m_blocks, m_panels), range(nb, n_blocks, n_panels));
        let (row0, col0) = (a_panels.start * K::MR, b_panels.start * K::NR);
        let (rows, cols) = ((a_panels.len() * K::MR).min(m - row0), (b_panels.len() * K::NR).min(n - col0));
        if let Some(load) = load {
            for r in 0..rows {
                load(row0 + r, col0, &mut block[r * ld..r * ld + cols]);
            }
        } else if a.depth == 0 {
            block.fill(0.0); // k = 0: no step overwrites the previous task's values
        }
        for k0 in (0..a.depth).step_by(K::KC) {
            let kc = K::KC.min(a.depth - k0);
            for jp in 0..cols.div_ceil(K::NR) {
                for ip in 0..rows.div_ceil(K::MR) {
                    let tile = block[ip * K::MR * ld + jp * K::NR..].as_mut_ptr();
                    // ip == 0: the first a panel of the block to meet this slice of b panel jp.
                    // SAFETY: the panels hold kc steps from k0; the tile's MR rows of NR lie in
                    // the block buffer; the kernel's ISA was detected (Isa::best).
                    unsafe { K::tile(kc, a.at(a_panels.start + ip, k0), b.at(b_panels.start + jp, k0), tile, ld, load.is_some() || k0 > 0, ip == 0) }
                }
            }
        }
        for r in 0..rows {
            store(row0 + r, col0, &mut block[r * ld..r * ld + cols]);
        }
    };
    // The tallest block's rows (blocks differ by at most one panel).
    let block_len = m_panels.div_ceil(m_blocks) * K::MR * ld;
    let run = |t: usize| with_block(block_len, |block| task(block, t));
    if parallel {
        (0..m_blocks * n_blocks).into_par_iter().for_each(run);
    } else {
        (0..m_blocks * n_blocks).for_each(run);
    }
}

thread_local! {
    /// This thread's block buffer, kept across products: a fresh one per product (up to 272 KiB
    /// for AMX's blocks) cost page faults and page clearing on every attention query tile (9% of
    /// a DiT-XL/2 bf16 forward's samples, `clear_page_erms`).
    static BLOCK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on `len` f32 of this thread's block buffer (with whatever earlier products left in
/// it), or on a fresh one if the buffer is in use (a product inside another's epilogue).
fn with_block(len: usize, f: impl FnOnce(&mut [f32])) {
    BLOCK.with(|cell| match cell.try_borrow_mut() {
        Ok(mut block) => {
            // From a cache line's start, so a tile's row segments span whole lines.
            if block.len() < len + LINE_F32 {
                block.resize(len + LINE_F32, 0.0);
            }
            let start = (LINE_F32 - block.as_ptr() as usize / 4 % LINE_F32) % LINE_F32;
            f(&mut block[start..start + len]);
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// Task blocks (m, n) over the panels: as few as `mc_panels` x NC_PANELS blocks allow, then split
/// further (the larger side first) until every thread has TASKS_PER_THREAD or no panel is left
/// to split; panels are shared out evenly, so no block is a sliver.
fn blocks(m_panels: usize, n_panels: usize, threads: usize, mc_panels: usize) -> (usize, usize) {
    let (mut mb, mut nb) = (m_panels.div_ceil(mc_panels), n_panels.div_ceil(NC_PANELS));
    while mb * nb < TASKS_PER_THREAD * threads && (mb < m_panels || nb < n_panels) {
        if nb < n_panels && (n_panels / nb >= m_panels / mb || mb == m_panels) {
            nb += 1;
        } else {
            mb += 1;
        }
    }
    (mb, nb)
}
