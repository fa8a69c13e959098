//! Packing into microkernel panels. A matrix seen as `lines` x k (a's rows, or b's columns) is
//! cut into panels of `width` lines; panel t holds, for every packed step s, the `width` values
//! of step s of its lines contiguously (`[step][width]`), zero past the last line and past k.
//! a may be several matrices side by side (U-ViT's skip concat: [x, skip] is never built).
//! A kernel may instead ask for its panels as square tiles (`Layout::tiles`: AMX loads each tile
//! as 16 contiguous rows of 64 bytes).
use super::elems::MatRef;
use rayon::prelude::*;

/// How a kernel reads one operand's panels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    /// Lines per panel.
    pub width: usize,
    /// None: steps one after another, each its `width` values (`[step][width]`).
    pub tiles: Option<Tiles>,
}

/// Panels stored as `side` x `side` tiles (side lines by side steps): chunk by chunk of `side`
/// steps (the depth padded to whole chunks with zeros), the width / side tiles of a chunk in
/// line order, each tile contiguous, `[line][step]` when `line_major` (a tile row is one line:
/// AMX's a) else `[step][line]` (AMX's b). Step s of a panel still starts at s · width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tiles {
    pub side: usize,
    pub line_major: bool,
}

impl Layout {
    /// Steps a packed run of one line may cover from a step that starts one (no tile boundary).
    fn run_steps(&self) -> usize {
        self.tiles.map_or(usize::MAX, |t| t.side)
    }

    /// Where line `l` at step `s` lies in its panel, and how far apart its next steps lie (up
    /// to `run_steps` of them).
    fn place(&self, l: usize, s: usize) -> (usize, usize) {
        let Some(Tiles { side, line_major }) = self.tiles else { return (s * self.width + l, self.width) };
        let tile = (s - s % side) * self.width + l / side * side * side;
        if line_major {
            (tile + l % side * side + s % side, 1)
        } else {
            (tile + s % side * side + l % side, side)
        }
    }
}

/// One packed operand: panels of `layout.width` lines over `depth` steps.
pub(super) struct Packed<E> {
    pub layout: Layout,
    pub depth: usize,
    pub data: Vec<E>,
}

impl<E> Packed<E> {
    /// The first element of step `step` of panel `panel` (for tiles, of the chunk `step` starts).
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
    // step-major panels or tiles only).
    if let [m] = parts {
        if m.row_stride == 1 && layout.tiles.is_none_or(|t| !t.line_major) {
            return pack_by_runs(k, rows, layout, parallel, &|p, first, out| E::read(m, first + p * m.col_stride, 1, out));
        }
    }
    let (width, depth) = (layout.width, depth::<E>(k, layout));
    let line = || vec![E::Value::default(); E::K_STEP * CHUNK_STEPS];
    let data = fill_panels(rows, depth, width, 1, parallel, line, |line, t, lines, panel| {
        // Steps in chunks, so the part of the panel being filled stays in L1 across its lines.
        for s0 in (0..depth).step_by(CHUNK_STEPS) {
            let chunk = &mut line[..CHUNK_STEPS.min(depth - s0) * E::K_STEP];
            for l in 0..lines {
                chunk.fill(E::Value::default());
                read_concatenated::<E>(parts, t * width + l, s0 * E::K_STEP, chunk);
                // Chunks start on tile boundaries (the tile side divides CHUNK_STEPS).
                for (r, run) in chunk.chunks(layout.run_steps().saturating_mul(E::K_STEP)).enumerate() {
                    let (at, stride) = layout.place(l, s0 + r * layout.run_steps());
                    E::pack(run, &mut panel[at..], stride);
                }
            }
        }
    });
    Packed { layout, depth, data }
}

/// Packed steps over k for `layout`: whole steps, padded to whole tiles.
fn depth<E: PackElem>(k: usize, layout: Layout) -> usize {
    let steps = k.div_ceil(E::K_STEP);
    layout.tiles.map_or(steps, |t| {
        assert!(CHUNK_STEPS.is_multiple_of(t.side), "cpu backend bug: {layout:?} tiles split packing chunks");
        steps.next_multiple_of(t.side)
    })
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
    assert!(layout.tiles.is_none_or(|t| !t.line_major), "cpu backend bug: runs pack step-major panels or tiles only");
    let (width, depth) = (layout.width, depth::<E>(k, layout));
    // Lines of one step stored together: the whole panel width, or a tile's side.
    let group = layout.tiles.map_or(width, |t| t.side);
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
                for g in (0..width.min(lines - i * width)).step_by(group) {
                    let at = layout.place(g, s).0;
                    E::pack_step(&runs[i * width + g..], stride, group.min(lines - i * width - g), &mut panel[at..at + group]);
                }
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
