//! Matrix products of the CPU backend: packed operands and register-tile microkernels (BLIS
//! style), chosen once per machine (`Isa`). b operands that are weights are packed once and
//! cached by the backend (`memory::Views::packed`); a is packed per product. bf16 x bf16
//! products use `vdpbf16ps` where the CPU has AVX-512-BF16, with f32 accumulation.
mod drive;
mod elems;
mod isa;
mod kernels;
mod pack;

pub(super) use elems::{Elems, MatRef};
pub use isa::Isa;

pub(super) use drive::RowFn;
use kernels::{Microkernel, Portable};
pub(super) use pack::RunFn;
use pack::{pack, Packed};

/// A b operand ([k, n]) packed for one kernel family.
pub(super) struct PackedB {
    isa: Isa,
    k: usize,
    n: usize,
    panels: PackedPanels,
}

enum PackedPanels {
    F32(Packed<f32>),
    // Made only for `Isa::Avx512Bf16`, which only x86-64 detects.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Bf16Pairs(Packed<u32>),
}

impl PackedB {
    /// Packs `b` for `isa`; bf16 x bf16 products (`bf16`) where the family has them, else f32.
    pub fn new(b: MatRef, isa: Isa, bf16: bool, parallel: bool) -> PackedB {
        let columns = [b.t()];
        let panels = panels(isa, bf16, |nr| pack(&columns, nr, parallel), |nr| pack(&columns, nr, parallel));
        PackedB { isa, k: b.rows, n: b.cols, panels }
    }

    /// Packs a b ([k, n]) that exists only as its row runs (`RunFn`), for `isa` as `new` does.
    pub fn from_runs(k: usize, n: usize, isa: Isa, bf16: bool, parallel: bool, run: &RunFn) -> PackedB {
        let panels = panels(isa, bf16, |nr| pack::pack_runs(k, n, nr, parallel, run), |nr| pack::pack_runs(k, n, nr, parallel, run));
        PackedB { isa, k, n, panels }
    }
}

/// b's panels for `isa`: bf16 pairs (`pairs(NR)`) when asked and the family multiplies them, else
/// f32 (`f32s(NR)`), each at its kernel's NR.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn panels(isa: Isa, bf16: bool, f32s: impl FnOnce(usize) -> Packed<f32>, pairs: impl FnOnce(usize) -> Packed<u32>) -> PackedPanels {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512Bf16 && bf16 {
        return PackedPanels::Bf16Pairs(pairs(kernels::Avx512Bf16::NR));
    }
    PackedPanels::F32(f32s(nr(isa)))
}

/// Columns of the register tile of a family's f32 kernel.
fn nr(isa: Isa) -> usize {
    match isa {
        Isa::Portable => Portable::NR,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => kernels::Avx2::NR,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx512Bf16 => kernels::Avx512::NR,
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("x86 families are never detected elsewhere"),
    }
}

/// c = a b, with a the matrices `a` side by side (their columns concatenated: k = b's rows):
/// `store(row, col, values)` receives every segment of c once, after `load` (if any) filled it
/// with what the product adds to. Parallel over the rayon pool when `parallel` (else on the
/// calling thread, e.g. inside a parallel task).
pub(super) fn matmul_rows(a: &[MatRef], b: &PackedB, load: Option<&RowFn>, store: &RowFn, parallel: bool) {
    let (m, n) = (a.first().map_or(0, |a| a.rows), b.n);
    let k: usize = a.iter().map(|a| a.cols).sum();
    assert!(k == b.k, "cpu backend bug: matmul [{m}, {k}] x [{}, {n}]", b.k);
    if m == 0 || n == 0 {
        return;
    }
    match (&b.panels, b.isa) {
        (PackedPanels::F32(bp), Isa::Portable) => run::<Portable>(a, bp, (m, n), load, store, parallel),
        #[cfg(target_arch = "x86_64")]
        (PackedPanels::F32(bp), Isa::Avx2) => run::<kernels::Avx2>(a, bp, (m, n), load, store, parallel),
        #[cfg(target_arch = "x86_64")]
        (PackedPanels::F32(bp), Isa::Avx512 | Isa::Avx512Bf16) => run::<kernels::Avx512>(a, bp, (m, n), load, store, parallel),
        #[cfg(target_arch = "x86_64")]
        (PackedPanels::Bf16Pairs(bp), _) => run::<kernels::Avx512Bf16>(a, bp, (m, n), load, store, parallel),
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("x86 families are never detected elsewhere"),
    }
}

fn run<K: Microkernel>(a: &[MatRef], b: &Packed<K::Elem>, mn: (usize, usize), load: Option<&RowFn>, store: &RowFn, parallel: bool) {
    let a = pack::<K::Elem>(a, K::MR, parallel);
    drive::multiply::<K>(&a, b, mn, load, store, parallel);
}

/// c: a dense row-major matrix shared by tasks that touch disjoint segments.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: `matmul_rows` hands each segment to one task.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// `len` elements of c from `at`.
    ///
    /// # Safety
    /// In bounds, and no other live reference to them.
    #[allow(clippy::mut_from_ref)]
    unsafe fn segment(&self, at: usize, len: usize) -> &mut [f32] {
        // SAFETY: forwarded.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(at), len) }
    }
}

/// c = a b, or c += a b with `accumulate`; c is dense row-major [a.rows, b.n].
pub(super) fn matmul_packed(a: MatRef, b: &PackedB, c: &mut [f32], accumulate: bool, parallel: bool) {
    let n = b.n;
    assert!(a.cols == b.k && c.len() == a.rows * n, "cpu backend bug: matmul [{}, {}] x [{}, {n}] into {}", a.rows, a.cols, b.k, c.len());
    let shared = Shared(c.as_mut_ptr());
    // SAFETY (both): segments of rows < a.rows and columns < n lie in c; each is visited once
    // by load and then once by store, by the task that owns it.
    let load = |r: usize, col: usize, values: &mut [f32]| values.copy_from_slice(unsafe { shared.segment(r * n + col, values.len()) });
    let store = |r: usize, col: usize, values: &mut [f32]| unsafe { shared.segment(r * n + col, values.len()) }.copy_from_slice(values);
    matmul_rows(&[a], b, accumulate.then_some(&load as &RowFn), &store, parallel);
}

#[cfg(test)]
mod tests;
