//! Matrix products of the CPU backend: packed operands and register-tile microkernels (BLIS
//! style), chosen once per machine (`Isa`). b operands that are weights are packed once and
//! cached by the backend (`memory::Views::packed`); a is packed per product. bf16 x bf16
//! products use AMX tiles where the CPU has them, else `vdpbf16ps` where it has AVX-512-BF16,
//! with f32 accumulation.
#[cfg(target_arch = "x86_64")]
mod amx;
mod drive;
mod elems;
mod isa;
mod kernels;
mod pack;

pub(super) use elems::{Elems, MatRef};
pub use isa::Isa;

pub(super) use drive::RowFn;
use kernels::{Microkernel, Portable, Side};
pub(super) use pack::RunFn;
use pack::{pack, Layout, Packed};

/// A b operand ([k, n]) packed for one kernel family.
pub(super) struct PackedB {
    isa: Isa,
    k: usize,
    n: usize,
    panels: PackedPanels,
}

/// An a operand ([m, k]) packed for one kernel family: packed per product, or once for a weight
/// that is the a side (conv2d's, whose output rows are its output channels).
pub(super) struct PackedA {
    isa: Isa,
    m: usize,
    k: usize,
    panels: PackedPanels,
}

enum PackedPanels {
    F32(Packed<f32>),
    // Made only for `Isa::Avx512Bf16` and `Isa::Amx`, which only x86-64 detects.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Bf16Pairs(Packed<u32>),
}

impl PackedB {
    /// Packs `b` for `isa`; bf16 x bf16 products (`bf16`) where the family has them, else f32.
    pub fn new(b: MatRef, isa: Isa, bf16: bool, parallel: bool) -> PackedB {
        let columns = [b.t()];
        let panels = panels(isa, bf16, Side::B, |width| pack(&columns, width, parallel), |width| pack(&columns, width, parallel));
        PackedB { isa, k: b.rows, n: b.cols, panels }
    }

    /// Packs a b ([k, n]) that exists only as its row runs (`RunFn`), for `isa` as `new` does.
    pub fn from_runs(k: usize, n: usize, isa: Isa, bf16: bool, parallel: bool, run: &RunFn) -> PackedB {
        let panels =
            panels(isa, bf16, Side::B, |width| pack::pack_runs(k, n, width, parallel, run), |width| pack::pack_runs(k, n, width, parallel, run));
        PackedB { isa, k, n, panels }
    }
}

impl PackedA {
    /// Packs the matrices `parts` side by side (their columns concatenated) for `isa`, in bf16
    /// pairs when `bf16` and the family multiplies them, else in f32.
    pub fn new(parts: &[MatRef], isa: Isa, bf16: bool, parallel: bool) -> PackedA {
        let m = parts.first().map_or(0, |a| a.rows);
        let k = parts.iter().map(|a| a.cols).sum();
        let panels = panels(isa, bf16, Side::A, |width| pack(parts, width, parallel), |width| pack(parts, width, parallel));
        PackedA { isa, m, k, panels }
    }

    /// `parts` packed to multiply `b` (its kernel family and element type).
    fn matching(parts: &[MatRef], b: &PackedB, parallel: bool) -> PackedA {
        PackedA::new(parts, b.isa, matches!(b.panels, PackedPanels::Bf16Pairs(_)), parallel)
    }
}

/// Panels for `isa` on `side`: bf16 pairs (`pairs(layout)`) when asked and the family multiplies
/// them, else f32 (`f32s(layout)`), each in its kernel's layout on that side.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn panels(isa: Isa, bf16: bool, side: Side, f32s: impl FnOnce(Layout) -> Packed<f32>, pairs: impl FnOnce(Layout) -> Packed<u32>) -> PackedPanels {
    #[cfg(target_arch = "x86_64")]
    match isa {
        Isa::Avx512Bf16 if bf16 => return PackedPanels::Bf16Pairs(pairs(kernels::Avx512Bf16::layout(side))),
        Isa::Amx if bf16 => return PackedPanels::Bf16Pairs(pairs(amx::Amx::layout(side))),
        _ => {}
    }
    PackedPanels::F32(f32s(f32_layout(isa, side)))
}

/// The layout of `isa`'s f32 kernel on `side`.
fn f32_layout(isa: Isa, side: Side) -> Layout {
    match isa {
        Isa::Portable => Portable::layout(side),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => kernels::Avx2::layout(side),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx512Bf16 | Isa::Amx => kernels::Avx512::layout(side),
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("x86 families are never detected elsewhere"),
    }
}

/// c = a b, with a the matrices `a` side by side (their columns concatenated: k = b's rows):
/// `store(row, col, values)` receives every segment of c once, after `load` (if any) filled it
/// with what the product adds to. Parallel over the rayon pool when `parallel` (else on the
/// calling thread, e.g. inside a parallel task).
pub(super) fn matmul_rows(a: &[MatRef], b: &PackedB, load: Option<&RowFn>, store: &RowFn, parallel: bool) {
    product_rows(&PackedA::matching(a, b, parallel), b, load, store, parallel);
}

/// c = a b as `matmul_rows` does, for an a packed beforehand for b's kernel family.
pub(super) fn product_rows(a: &PackedA, b: &PackedB, load: Option<&RowFn>, store: &RowFn, parallel: bool) {
    let (m, n) = (a.m, b.n);
    assert!(a.k == b.k && a.isa == b.isa, "cpu backend bug: matmul [{m}, {}] x [{}, {n}] ({:?} x {:?})", a.k, b.k, a.isa, b.isa);
    if m == 0 || n == 0 {
        return;
    }
    match (&a.panels, &b.panels, b.isa) {
        (PackedPanels::F32(ap), PackedPanels::F32(bp), Isa::Portable) => drive::multiply::<Portable>(ap, bp, (m, n), load, store, parallel),
        #[cfg(target_arch = "x86_64")]
        (PackedPanels::F32(ap), PackedPanels::F32(bp), Isa::Avx2) => drive::multiply::<kernels::Avx2>(ap, bp, (m, n), load, store, parallel),
        #[cfg(target_arch = "x86_64")]
        (PackedPanels::F32(ap), PackedPanels::F32(bp), Isa::Avx512 | Isa::Avx512Bf16 | Isa::Amx) => {
            drive::multiply::<kernels::Avx512>(ap, bp, (m, n), load, store, parallel)
        }
        #[cfg(target_arch = "x86_64")]
        (PackedPanels::Bf16Pairs(ap), PackedPanels::Bf16Pairs(bp), Isa::Avx512Bf16) => {
            drive::multiply::<kernels::Avx512Bf16>(ap, bp, (m, n), load, store, parallel)
        }
        #[cfg(target_arch = "x86_64")]
        (PackedPanels::Bf16Pairs(ap), PackedPanels::Bf16Pairs(bp), Isa::Amx) => drive::multiply::<amx::Amx>(ap, bp, (m, n), load, store, parallel),
        _ => unreachable!("cpu backend bug: a and b packed in different elements"),
    }
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
    product_into(&PackedA::matching(&[a], b, parallel), b, c, accumulate, parallel);
}

/// c = a b, or c += a b with `accumulate`, for an a packed beforehand; c is dense row-major [a's rows, b.n].
pub(super) fn product_into(a: &PackedA, b: &PackedB, c: &mut [f32], accumulate: bool, parallel: bool) {
    let n = b.n;
    assert!(a.k == b.k && c.len() == a.m * n, "cpu backend bug: matmul [{}, {}] x [{}, {n}] into {}", a.m, a.k, b.k, c.len());
    let shared = Shared(c.as_mut_ptr());
    // SAFETY (both): segments of rows < a.rows and columns < n lie in c; each is visited once
    // by load and then once by store, by the task that owns it.
    let load = |r: usize, col: usize, values: &mut [f32]| values.copy_from_slice(unsafe { shared.segment(r * n + col, values.len()) });
    let store = |r: usize, col: usize, values: &mut [f32]| unsafe { shared.segment(r * n + col, values.len()) }.copy_from_slice(values);
    product_rows(a, b, accumulate.then_some(&load as &RowFn), &store, parallel);
}

#[cfg(test)]
mod tests;
