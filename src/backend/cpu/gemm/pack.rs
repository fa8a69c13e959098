//! Packing into microkernel panels. A matrix seen as `lines` x k (a's rows, or b's columns) is
//! cut into panels of `width` lines; panel t holds, for every packed step s, the `width` values
//! of step s of its lines contiguously (`[step][width]`), zero past the last line and past k.
use super::elems::MatRef;
use rayon::prelude::*;

/// One packed operand: `panels` panels of `width` lines over `depth` steps.
pub(super) struct Packed<E> {
    pub width: usize,
    pub depth: usize,
    pub data: Vec<E>,
}

impl<E> Packed<E> {
    /// The first element of step `step` of panel `panel`.
    pub fn at(&self, panel: usize, step: usize) -> *const E {
        self.data[(panel * self.depth + step) * self.width..].as_ptr()
    }
}

/// An element of packed panels: f32, or a bf16 pair (k even in the low half, k odd in the high:
/// the lane order `vdpbf16ps` multiplies pairwise).
pub(super) trait PackElem: Copy + Default + Send + Sync {
    /// k values per packed step.
    const K_STEP: usize;
    /// Packs one line (`k` values of `m` from `start`, `stride` apart) into `out[step * width]`.
    fn pack_line(m: &MatRef, start: usize, stride: usize, k: usize, out: &mut [Self], width: usize);
}

impl PackElem for f32 {
    const K_STEP: usize = 1;

    fn pack_line(m: &MatRef, start: usize, stride: usize, k: usize, out: &mut [f32], width: usize) {
        let mut line = vec![0.0f32; k];
        m.data.line_f32(start, stride, &mut line);
        line.iter().enumerate().for_each(|(p, &v)| out[p * width] = v);
    }
}

impl PackElem for u32 {
    const K_STEP: usize = 2;

    fn pack_line(m: &MatRef, start: usize, stride: usize, k: usize, out: &mut [u32], width: usize) {
        let mut line = vec![0u16; k.next_multiple_of(2)];
        m.data.line_bf16(start, stride, &mut line[..k]);
        line.chunks_exact(2).enumerate().for_each(|(q, pair)| out[q * width] = u32::from(pair[0]) | u32::from(pair[1]) << 16);
    }
}

/// Packs the rows of `m` (each k = `m.cols` long) into panels of `width` rows.
pub(super) fn pack<E: PackElem>(m: MatRef, width: usize, parallel: bool) -> Packed<E> {
    let depth = m.cols.div_ceil(E::K_STEP);
    let panels = m.rows.div_ceil(width);
    let mut data = vec![E::default(); panels * depth * width];
    let panel_len = depth * width;
    let fill = |(t, panel): (usize, &mut [E])| {
        for l in 0..width.min(m.rows.saturating_sub(t * width)) {
            E::pack_line(&m, (t * width + l) * m.row_stride, m.col_stride, m.cols, &mut panel[l..], width);
        }
    };
    if panel_len > 0 {
        if parallel {
            data.par_chunks_mut(panel_len).enumerate().for_each(fill);
        } else {
            data.chunks_mut(panel_len).enumerate().for_each(fill);
        }
    }
    Packed { width, depth, data }
}
