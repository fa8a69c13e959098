//! Packing into microkernel panels. A matrix seen as `lines` x k (a's rows, or b's columns) is
//! cut into panels of `width` lines; panel t holds, for every packed step s, the `width` values
//! of step s of its lines contiguously (`[step][width]`), zero past the last line and past k.
//! a may be several matrices side by side (U-ViT's skip concat: [x, skip] is never built).
//! A kernel may ask for the depth padded to whole tiles of steps, and for each k slice of a
//! panel stored line by line instead (`Layout`: AMX loads a's rows as tile rows).
use super::elems::MatRef;
use rayon::prelude::*;

/// How a kernel reads one operand's panels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    /// Lines per panel.
    pub width: usize,
    /// The depth is padded (with zeros) to a multiple of this many steps.
    pub step_align: usize,
    /// Some(kc): each slice of kc steps from a multiple of kc (the last one shorter) is stored
    /// line-major, [width][its steps], in the place the step-major slice would take.
    pub line_major_slices: Option<usize>,
}

/// One packed operand: panels of `layout.width` lines over `depth` steps.
pub(super) struct Packed<E> {
    pub layout: Layout,
    pub depth: usize,
    pub data: Vec<E>,
}

impl<E> Packed<E> {
    /// The first element of step `step` of panel `panel` (of its slice, when line-major:
    /// `step` then starts a slice).
    pub fn at(&self, panel: usize, step: usize) -> *const E {
        self.data[(panel * self.depth + step) * self.layout.width..].as_ptr()
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
    /// A computed value (`pack_runs`), as stored in a line.
    fn value(v: f32) -> Self::Value;
    /// Packs one step of `lines` lines from `runs`: K_STEP runs `stride` apart, run j holding
    /// the lines' values at the step's j-th k.
    fn pack_step(runs: &[Self::Value], stride: usize, lines: usize, out: &mut [Self]);
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

    fn value(v: f32) -> f32 {
        v
    }

    fn pack_step(runs: &[f32], _stride: usize, lines: usize, out: &mut [f32]) {
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

    fn value(v: f32) -> u16 {
        half::bf16::from_f32(v).to_bits()
    }

    fn pack_step(runs: &[u16], stride: usize, lines: usize, out: &mut [u32]) {
        let (even, odd) = (&runs[..lines], &runs[stride..stride + lines]);
        out.iter_mut().zip(even.iter().zip(odd)).for_each(|(o, (&e, &d))| *o = u32::from(e) | u32::from(d) << 16);
    }
}

/// Packed steps per chunk of a panel filled line by line (64 x 8 f32 = 2 KiB).
const CHUNK_STEPS: usize = 64;

/// Values `from..from + out.len()` (clipped to k) of line `row` of `parts` side by side.
fn read_concatenated<E: PackElem>(parts: &[MatRef], row: usize, from: usize, out: &mut [E::Value]) {
    let mut start = 0; // the first k of the current part
    for m in parts {
        let (lo, hi) = (from.max(start), (from + out.len()).min(start + m.cols));
        if lo < hi {
            E::read(m, row * m.row_stride + (lo - start) * m.col_stride, m.col_stride, &mut out[lo - from..hi - from]);
        }
        start += m.cols;
    }
}

/// Packs the rows of `parts` side by side (same rows; k = the sum of their columns) into panels
/// laid out as `layout` says.
pub(super) fn pack<E: PackElem>(parts: &[MatRef], layout: Layout, parallel: bool) -> Packed<E> {
    let rows = parts.first().map_or(0, |p| p.rows);
    assert!(parts.iter().all(|p| p.rows == rows), "cpu backend bug: concatenated operands with different rows");
    let k: usize = parts.iter().map(|p| p.cols).sum();
    // Lines adjacent in memory (b = a row-major [k, n], e.g. attention's V): a panel's step is
    // one contiguous run of its lines' values, read as such instead of line by line (into
    // step-major panels only).
    if let ([m], None) = (parts, layout.line_major_slices) {
        if m.row_stride == 1 {
            return pack_by_runs(k, rows, layout, parallel, &|p, first, out| E::read(m, first + p * m.col_stride, 1, out));
        }
    }
    let (width, depth) = (layout.width, depth::<E>(k, layout));
    assert!(layout.line_major_slices.is_none_or(|kc| kc.is_multiple_of(CHUNK_STEPS)), "cpu backend bug: k slices of {layout:?} split chunks");
    let line = || vec![E::Value::default(); E::K_STEP * CHUNK_STEPS];
    let data = fill_panels(rows, depth, width, 1, parallel, line, |line, t, lines, panel| {
        // Steps in chunks, so the part of the panel being filled stays in L1 across its lines.
        for s0 in (0..depth).step_by(CHUNK_STEPS) {
            let chunk = &mut line[..CHUNK_STEPS.min(depth - s0) * E::K_STEP];
            for l in 0..lines {
                chunk.fill(E::Value::default());
                read_concatenated::<E>(parts, t * width + l, s0 * E::K_STEP, chunk);
                match layout.line_major_slices {
                    None => E::pack(chunk, &mut panel[s0 * width + l..], width),
                    // The chunk lies in one slice (CHUNK_STEPS divides kc): contiguous in line l.
                    Some(kc) => {
                        let k0 = s0 / kc * kc;
                        E::pack(chunk, &mut panel[k0 * width + l * kc.min(depth - k0) + s0 - k0..], 1);
                    }
                }
            }
        }
    });
    Packed { layout, depth, data }
}

/// Packed steps over k for `layout`: whole steps, padded to its alignment.
fn depth<E: PackElem>(k: usize, layout: Layout) -> usize {
    k.div_ceil(E::K_STEP).next_multiple_of(layout.step_align)
}

/// Fills `out[i]` with b[p][first + i], a run of one row of b: the lines of a packing by runs.
pub(in crate::backend::cpu) type RunFn<'f, V = f32> = dyn Fn(usize, usize, &mut [V]) + Sync + 'f;

/// Packs b ([k, n], never built) into panels of `layout` from its row runs (`run`), e.g.
/// conv2d's im2col matrix read straight from the image.
pub(super) fn pack_runs<E: PackElem>(k: usize, n: usize, layout: Layout, parallel: bool, run: &RunFn) -> Packed<E> {
    pack_by_runs(k, n, layout, parallel, &|p, first, out: &mut [E::Value]| {
        let mut values = [0.0f32; MAX_RUN];
        let values = &mut values[..out.len()];
        run(p, first, values);
        out.iter_mut().zip(values.iter()).for_each(|(o, &v)| *o = E::value(v));
    })
}

/// The longest run: RUN_PANELS panels of the widest kernel (the AVX-512 kernels' NR, 48).
const MAX_RUN: usize = RUN_PANELS * 48;

/// Panels packed together from shared runs: one run per step covers them all.
const RUN_PANELS: usize = 8;

/// Packs `lines` lines over k from runs: `read(p, first, out)` fills out with the values at k = p
/// of lines first.. (out.len() of them), RUN_PANELS panels' worth at a time.
fn pack_by_runs<E: PackElem>(k: usize, lines: usize, layout: Layout, parallel: bool, read: &RunFn<E::Value>) -> Packed<E> {
    assert!(layout.line_major_slices.is_none(), "cpu backend bug: runs pack step-major panels only");
    let (width, depth) = (layout.width, depth::<E>(k, layout));
    let stride = RUN_PANELS * width;
    let runs = || vec![E::Value::default(); E::K_STEP * stride];
    let data = fill_panels(lines, depth, width, RUN_PANELS, parallel, runs, |runs, t, lines, panels| {
        for s in 0..depth {
            runs.fill(E::Value::default());
            for (j, run) in runs.chunks_exact_mut(stride).enumerate() {
                let p = s * E::K_STEP + j;
                if p < k {
                    read(p, t * width, &mut run[..lines]);
                }
            }
            for (i, panel) in panels.chunks_exact_mut(depth * width).enumerate() {
                E::pack_step(&runs[i * width..], stride, width.min(lines - i * width), &mut panel[s * width..(s + 1) * width]);
            }
        }
    });
    Packed { layout, depth, data }
}

/// Panels of `width` lines over `depth` steps, filled `group` panels at a time (in parallel when
/// `parallel`) by `fill(scratch, first panel, lines in them, panels)`, zero elsewhere.
fn fill_panels<E: PackElem, S>(
    lines: usize,
    depth: usize,
    width: usize,
    group: usize,
    parallel: bool,
    scratch: impl Fn() -> S + Sync + Send,
    fill: impl Fn(&mut S, usize, usize, &mut [E]) + Sync + Send,
) -> Vec<E> {
    let panel_len = depth * width;
    let mut data = vec![E::default(); lines.div_ceil(width) * panel_len];
    let fill = |s: &mut S, (g, panels): (usize, &mut [E])| fill(s, g * group, (group * width).min(lines - g * group * width), panels);
    if panel_len > 0 {
        if parallel {
            data.par_chunks_mut(group * panel_len).enumerate().for_each_init(scratch, fill);
        } else {
            let mut s = scratch();
            data.chunks_mut(group * panel_len).enumerate().for_each(|panels| fill(&mut s, panels));
        }
    }
    data
}
