//! Packing into microkernel panels. A matrix seen as `lines` x k (a's rows, or b's columns) is
//! cut into panels of `width` lines; panel t holds, for every packed step s, the `width` values
//! of step s of its lines contiguously (`[step][width]`), zero past the last line and past k.
//! a may be several matrices side by side (U-ViT's skip concat: [x, skip] is never built).
use super::elems::MatRef;
use rayon::prelude::*;

/// One packed operand: panels of `width` lines over `depth` steps.
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
    /// One value of a line before packing: f32, or bf16 bits.
    type Value: Copy + Default;
    /// Reads `out.len()` values of `m` from element `start`, `stride` apart.
    fn read(m: &MatRef, start: usize, stride: usize, out: &mut [Self::Value]);
    /// Packs one line (zero-padded to whole steps) into `out[step * width]`.
    fn pack(line: &[Self::Value], out: &mut [Self], width: usize);
    /// Packs one step of `lines` lines from `runs`: K_STEP runs of `width` values, run j holding
    /// the lines' values at the step's j-th k.
    fn pack_step(runs: &[Self::Value], width: usize, lines: usize, out: &mut [Self]);
}

impl PackElem for f32 {
    const K_STEP: usize = 1;
    type Value = f32;

    fn read(m: &MatRef, start: usize, stride: usize, out: &mut [f32]) {
        m.data.line_f32(start, stride, out);
    }

    fn pack(line: &[f32], out: &mut [f32], width: usize) {
        line.iter().enumerate().for_each(|(p, &v)| out[p * width] = v);
    }

    fn pack_step(runs: &[f32], _width: usize, lines: usize, out: &mut [f32]) {
        out[..lines].copy_from_slice(&runs[..lines]);
    }
}

impl PackElem for u32 {
    const K_STEP: usize = 2;
    type Value = u16;

    fn read(m: &MatRef, start: usize, stride: usize, out: &mut [u16]) {
        m.data.line_bf16(start, stride, out);
    }

    fn pack(line: &[u16], out: &mut [u32], width: usize) {
        line.chunks_exact(2).enumerate().for_each(|(q, pair)| out[q * width] = u32::from(pair[0]) | u32::from(pair[1]) << 16);
    }

    fn pack_step(runs: &[u16], width: usize, lines: usize, out: &mut [u32]) {
        let (even, odd) = (&runs[..lines], &runs[width..width + lines]);
        out.iter_mut().zip(even.iter().zip(odd)).for_each(|(o, (&e, &d))| *o = u32::from(e) | u32::from(d) << 16);
    }
}

/// Packs the rows of `parts` side by side (same rows; k = the sum of their columns) into panels
/// of `width` rows.
pub(super) fn pack<E: PackElem>(parts: &[MatRef], width: usize, parallel: bool) -> Packed<E> {
    let rows = parts.first().map_or(0, |p| p.rows);
    assert!(parts.iter().all(|p| p.rows == rows), "cpu backend bug: concatenated operands with different rows");
    let k: usize = parts.iter().map(|p| p.cols).sum();
    let depth = k.div_ceil(E::K_STEP);
    let panels = rows.div_ceil(width);
    let mut data = vec![E::default(); panels * depth * width];
    let panel_len = depth * width;
    // Lines adjacent in memory (b = a row-major [k, n], e.g. attention's V): a panel's step is
    // one contiguous run of its lines' values, read as such instead of line by line.
    let adjacent = parts.len() == 1 && parts[0].row_stride == 1;
    let fill = |line: &mut Vec<E::Value>, (t, panel): (usize, &mut [E])| {
        let lines = width.min(rows.saturating_sub(t * width));
        if adjacent {
            return pack_adjacent(&parts[0], t * width, lines, line, panel, width);
        }
        for l in 0..lines {
            let mut at = 0;
            for m in parts {
                E::read(m, (t * width + l) * m.row_stride, m.col_stride, &mut line[at..at + m.cols]);
                at += m.cols;
            }
            E::pack(&line[..depth * E::K_STEP], &mut panel[l..], width);
        }
    };
    let line = || vec![E::Value::default(); (depth * E::K_STEP).max(E::K_STEP * width)];
    if panel_len > 0 {
        if parallel {
            data.par_chunks_mut(panel_len).enumerate().for_each_init(line, fill);
        } else {
            let mut line = line();
            data.chunks_mut(panel_len).enumerate().for_each(|panel| fill(&mut line, panel));
        }
    }
    Packed { width, depth, data }
}

/// One panel of `lines` adjacent lines from line `first`: per step, K_STEP contiguous runs
/// (zero past k), packed together. `scratch` holds at least K_STEP x `width` values.
fn pack_adjacent<E: PackElem>(m: &MatRef, first: usize, lines: usize, scratch: &mut [E::Value], panel: &mut [E], width: usize) {
    let k = m.cols;
    for (s, out) in panel.chunks_exact_mut(width).enumerate() {
        let runs = &mut scratch[..E::K_STEP * width];
        runs.fill(E::Value::default());
        for (j, run) in runs.chunks_exact_mut(width).enumerate() {
            let p = s * E::K_STEP + j;
            if p < k {
                E::read(m, first + p * m.col_stride, 1, &mut run[..lines]);
            }
        }
        E::pack_step(runs, width, lines, out);
    }
}
