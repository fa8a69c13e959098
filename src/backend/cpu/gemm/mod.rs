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

use kernels::{Microkernel, Portable};
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
    Bf16Pairs(Packed<u32>),
}

impl PackedB {
    /// Packs `b` for `isa`; bf16 x bf16 products (`bf16`) where the family has them, else f32.
    pub fn new(b: MatRef, isa: Isa, bf16: bool, parallel: bool) -> PackedB {
        let columns = b.t();
        let panels = match isa {
            Isa::Avx512Bf16 if bf16 => PackedPanels::Bf16Pairs(pack(columns, nr(isa), parallel)),
            _ => PackedPanels::F32(pack(columns, nr(isa), parallel)),
        };
        PackedB { isa, k: b.rows, n: b.cols, panels }
    }
}

/// Columns of the register tile of a family's f32 kernel (all bf16 kernels share it).
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

/// c = a b, or c += a b with `accumulate`; c is dense row-major [a.rows, b.n]. Parallel over
/// the rayon pool when `parallel` (else on the calling thread, e.g. inside a parallel task).
pub(super) fn matmul_packed(a: MatRef, b: &PackedB, c: &mut [f32], accumulate: bool, parallel: bool) {
    let (m, n) = (a.rows, b.n);
    assert!(a.cols == b.k && c.len() == m * n, "cpu backend bug: matmul [{m}, {}] x [{}, {n}] into {}", a.cols, b.k, c.len());
    if c.is_empty() {
        return;
    }
    if b.k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    match (&b.panels, b.isa) {
        (PackedPanels::F32(bp), Isa::Portable) => run::<Portable>(a, bp, m, n, c, accumulate, parallel),
        #[cfg(target_arch = "x86_64")]
        (PackedPanels::F32(bp), Isa::Avx2) => run::<kernels::Avx2>(a, bp, m, n, c, accumulate, parallel),
        #[cfg(target_arch = "x86_64")]
        (PackedPanels::F32(bp), Isa::Avx512 | Isa::Avx512Bf16) => run::<kernels::Avx512>(a, bp, m, n, c, accumulate, parallel),
        #[cfg(target_arch = "x86_64")]
        (PackedPanels::Bf16Pairs(bp), _) => run::<kernels::Avx512Bf16>(a, bp, m, n, c, accumulate, parallel),
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("x86 families are never detected elsewhere"),
    }
}

fn run<K: Microkernel>(a: MatRef, b: &Packed<K::Elem>, m: usize, n: usize, c: &mut [f32], accumulate: bool, parallel: bool) {
    let a = pack::<K::Elem>(a, K::MR, parallel);
    drive::multiply::<K>(&a, b, m, n, c, accumulate, parallel);
}

#[cfg(test)]
mod tests;
