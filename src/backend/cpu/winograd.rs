//! 3x3 convolutions (stride 1, padding 1) by Winograd's minimal filtering F(4x4, 3x3) (Lavin &
//! Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016, eq. 8): a 4x4 output
//! tile is Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A for its 6x6 input tile d — 36 multiplies per tile and
//! channel pair instead of 144. Summed over input channels, each of the 36 element products is a
//! GEMM, M_ξ [tiles, out_c] = V_ξ [tiles, in_c] · U_ξ [in_c, out_c], with V = Bᵀ d B per (tile,
//! channel) and U = G g Gᵀ per channel pair (packed once per weight, as weights are). Points 0,
//! ±1, ±2 (the paper's matrices below): the f32 error stays near a direct convolution's (every
//! conv2d and SD VAE test holds at its f32 tolerance), and the SD VAE's convolutions need a
//! quarter of the multiplies.
use super::gemm::{matmul_packed, Isa, MatRef, PackedB};
use super::memory::{Dst, Src, Views};
use super::{parallel, simd};
use crate::backend::Conv2d;
use crate::error::Result;
use rayon::prelude::*;
use std::sync::Arc;

/// Bᵀ: the input transform.
const BT: [[f32; 6]; 6] = [
    [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
    [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
    [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
    [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];

/// G: the filter transform.
const G: [[f32; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// Aᵀ: the output transform.
const AT: [[f32; 6]; 4] =
    [[1.0, 1.0, 1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, 2.0, -2.0, 0.0], [0.0, 1.0, 1.0, 4.0, 4.0, 0.0], [0.0, 1.0, -1.0, 8.0, -8.0, 1.0]];

/// Output tile side, input tile side, and element products per tile.
const M: usize = 4;
const TILE: usize = 6;
const XI: usize = TILE * TILE;

/// Channels transformed together (one AVX-512 vector of lanes).
const LANES: usize = 16;

/// Upper bound on the f32 elements of V or M for one band of tile rows (16 MiB each).
const BAND_ELEMS: usize = 1 << 22;

/// Whether `op` is a convolution this path takes: 3x3, padding 1, and wide enough that the
/// transforms are small beside the products.
pub(super) fn applies(op: &Conv2d) -> bool {
    op.kernel == 3 && op.pad == 1 && op.in_c >= 8 && op.out_c >= 16
}

/// The convolution `op` (which `applies`): per sample, per band of tile rows, transform the
/// input, run the 36 products, transform back into `out` (+ bias).
///
/// The products run in f32 whatever the storage: V and U, unlike the stored values, are not
/// bf16 numbers, and rounding them to bf16 doubled the SD VAE fixture's bf16 error.
pub(super) fn conv3x3(views: &Views, op: &Conv2d, x: &[f32], weight: &Src, bias: Option<&[f32]>, out: &Dst) -> Result<()> {
    let Conv2d { batch, in_c, out_c, height: h, width: w, .. } = *op;
    let (tiles_y, tiles_x) = (h.div_ceil(M), w.div_ceil(M));
    let u = filters(views, op, weight)?;
    let band_rows = (BAND_ELEMS / (XI * tiles_x * in_c.max(out_c))).clamp(1, tiles_y);
    let mut v = vec![0.0f32; band_rows * tiles_x * XI * in_c];
    let mut m = vec![0.0f32; XI * band_rows * tiles_x * out_c];
    for b in 0..batch {
        let image = &x[b * in_c * h * w..(b + 1) * in_c * h * w];
        for ty0 in (0..tiles_y).step_by(band_rows) {
            let rows = band_rows.min(tiles_y - ty0);
            let tiles = rows * tiles_x;
            let v = &mut v[..tiles * XI * in_c];
            input_transform(image, (in_c, h, w), ty0, tiles_x, v);
            let m = &mut m[..XI * tiles * out_c];
            for (xi, m_xi) in m.chunks_exact_mut(tiles * out_c).enumerate() {
                // V_ξ: row t at V[t][ξ][..], rows 36 x in_c apart.
                let v_xi = MatRef::new(&v[xi * in_c..], tiles, in_c, XI * in_c);
                matmul_packed(v_xi, &u[xi], m_xi, false, true);
            }
            output_transform(m, (out_c, h, w), (b, ty0, rows, tiles_x), bias, out);
        }
    }
    Ok(())
}

/// U_ξ [in_c, out_c] = (G g Gᵀ)[ξ] of every channel pair, for the 36 ξ, packed once per weight.
fn filters(views: &Views, op: &Conv2d, weight: &Src) -> Result<Vec<Arc<PackedB>>> {
    let (in_c, out_c) = (op.in_c, op.out_c);
    let make = || {
        let g = weight.values();
        let mut u = vec![0.0f32; XI * in_c * out_c];
        for o in 0..out_c {
            for c in 0..in_c {
                let g = &g[(o * in_c + c) * 9..][..9];
                // G g (6x3), then (G g) Gᵀ (6x6).
                let gg: [[f32; 3]; TILE] = std::array::from_fn(|i| std::array::from_fn(|b| (0..3).map(|a| G[i][a] * g[a * 3 + b]).sum()));
                for (xi, (i, j)) in (0..TILE).flat_map(|i| (0..TILE).map(move |j| (i, j))).enumerate() {
                    u[(xi * in_c + c) * out_c + o] = (0..3).map(|b| gg[i][b] * G[j][b]).sum();
                }
            }
        }
        let isa = Isa::best();
        u.chunks_exact(in_c * out_c).map(|u_xi| PackedB::new(MatRef::new(u_xi, in_c, out_c, out_c), isa, false, true)).collect()
    };
    views.packed_group("conv2d", "weight", &op.weight, [in_c, out_c, 3, 3], XI, false, make)
}

/// V[t][ξ][c] = (Bᵀ d B)[ξ] for tile t of the band from tile row `ty0` (tiles_x per row) and
/// channel c of `image` ([channels, h, w]), zero padding outside it.
fn input_transform(image: &[f32], (channels, h, w): (usize, usize, usize), ty0: usize, tiles_x: usize, v: &mut [f32]) {
    let tile_len = XI * channels;
    v.par_chunks_mut(tile_len).with_min_len(parallel::min_items(tile_len)).enumerate().for_each(|(t, vt)| {
        let (ty, tx) = (ty0 + t / tiles_x, t % tiles_x);
        simd::vectorized(|| input_tile(image, (channels, h, w), (ty, tx), vt));
    });
}

/// V[ξ][c] of the tile at tile row `ty`, column `tx` (`vt`: [36][channels]).
#[inline(always)]
fn input_tile(image: &[f32], (channels, h, w): (usize, usize, usize), (ty, tx): (usize, usize), vt: &mut [f32]) {
    for c0 in (0..channels).step_by(LANES) {
        let lanes = LANES.min(channels - c0);
        let mut d = [[[0.0f32; LANES]; TILE]; TILE];
        for (i, row) in d.iter_mut().enumerate() {
            let y = (ty * M + i).wrapping_sub(1);
            if y >= h {
                continue;
            }
            for (j, cell) in row.iter_mut().enumerate() {
                let x = (tx * M + j).wrapping_sub(1);
                if x < w {
                    for (l, value) in cell.iter_mut().enumerate().take(lanes) {
                        *value = image[((c0 + l) * h + y) * w + x];
                    }
                }
            }
        }
        let out = transform(&BT, &d);
        for (xi, lanes_out) in out.iter().flatten().enumerate() {
            copy_lanes(&mut vt[xi * channels + c0..], lanes_out, lanes);
        }
    }
}

/// The first `lanes` of `src` into `dst`; a whole vector's worth is a fixed-size copy (inlined
/// moves, not a memmove call per 16 values).
#[inline(always)]
fn copy_lanes(dst: &mut [f32], src: &[f32], lanes: usize) {
    if lanes == LANES {
        dst[..LANES].copy_from_slice(&src[..LANES]);
    } else {
        dst[..lanes].copy_from_slice(&src[..lanes]);
    }
}

/// T d Tᵀ for a transform T (rows x 6) over 6x6 tiles of LANES lanes.
#[inline(always)]
fn transform<const R: usize>(t: &[[f32; 6]; R], d: &[[[f32; LANES]; TILE]; TILE]) -> [[[f32; LANES]; R]; R] {
    let mut left = [[[0.0f32; LANES]; TILE]; R];
    for (r, row) in left.iter_mut().enumerate() {
        for (k, coef) in t[r].iter().enumerate().filter(|(_, c)| **c != 0.0) {
            for (cell, src) in row.iter_mut().zip(&d[k]) {
                cell.iter_mut().zip(src).for_each(|(o, s)| *o += coef * s);
            }
        }
    }
    let mut out = [[[0.0f32; LANES]; R]; R];
    for (r, row) in out.iter_mut().enumerate() {
        for (s, cell) in row.iter_mut().enumerate() {
            for (k, coef) in t[s].iter().enumerate().filter(|(_, c)| **c != 0.0) {
                cell.iter_mut().zip(&left[r][k]).for_each(|(o, l)| *o += coef * l);
            }
        }
    }
    out
}

/// Output tiles from M ([36][tiles][channels]) of the band of `rows` tile rows from `ty0`:
/// Aᵀ m A per tile and channel, plus bias, stored to sample `b` of `out` row by row.
fn output_transform(
    m: &[f32],
    (channels, h, w): (usize, usize, usize),
    (b, ty0, rows, tiles_x): (usize, usize, usize, usize),
    bias: Option<&[f32]>,
    out: &Dst,
) {
    let tiles = rows * tiles_x;
    parallel::for_each_index(
        rows,
        tiles_x * XI * channels,
        || vec![0.0f32; channels * M * w],
        |strip, r| {
            let ty = ty0 + r;
            simd::vectorized(|| output_tiles(m, (channels, w), (r, tiles_x, tiles), strip));
            for c in 0..channels {
                let add = bias.map_or(0.0, |bias| bias[c]);
                for i in 0..M.min(h - ty * M) {
                    let row = &mut strip[(c * M + i) * w..][..w];
                    row.iter_mut().for_each(|v| *v += add);
                    out.store(((b * channels + c) * h + ty * M + i) * w, row);
                }
            }
        },
    );
}

/// Aᵀ m A of every tile of tile row `r` of the band (`tiles` in it) into `strip`
/// ([channels][4][w]).
#[inline(always)]
fn output_tiles(m: &[f32], (channels, w): (usize, usize), (r, tiles_x, tiles): (usize, usize, usize), strip: &mut [f32]) {
    for tx in 0..tiles_x {
        let t = r * tiles_x + tx;
        for c0 in (0..channels).step_by(LANES) {
            let lanes = LANES.min(channels - c0);
            let mut d = [[[0.0f32; LANES]; TILE]; TILE];
            for (xi, cell) in d.iter_mut().flatten().enumerate() {
                copy_lanes(cell, &m[(xi * tiles + t) * channels + c0..], lanes);
            }
            let y = transform(&AT, &d);
            for (i, y_row) in y.iter().enumerate() {
                for (j, cell) in y_row.iter().enumerate() {
                    let x = tx * M + j;
                    if x < w {
                        for (l, &value) in cell.iter().enumerate().take(lanes) {
                            strip[((c0 + l) * M + i) * w + x] = value;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A is the 3x3 correlation of d with g (the identity the module
    /// relies on), in f64 on random tiles.
    #[test]
    fn the_transforms_compute_a_correlation() {
        let mut seed = 1u64;
        let mut random = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 40) as f64 / (1u64 << 24) as f64 - 0.5
        };
        for _ in 0..20 {
            let d: Vec<f64> = (0..36).map(|_| random()).collect();
            let g: Vec<f64> = (0..9).map(|_| random()).collect();
            let f = |m: &[[f32; 6]], i: usize, k: usize| f64::from(m[i][k]);
            // U = G g Gᵀ, V = Bᵀ d B.
            let u =
                |i: usize, j: usize| (0..3).map(|a| (0..3).map(|b| f64::from(G[i][a]) * g[a * 3 + b] * f64::from(G[j][b])).sum::<f64>()).sum::<f64>();
            let v = |i: usize, j: usize| (0..6).map(|a| (0..6).map(|b| f(&BT, i, a) * d[a * 6 + b] * f(&BT, j, b)).sum::<f64>()).sum::<f64>();
            for i in 0..4 {
                for j in 0..4 {
                    let y: f64 = (0..6).map(|a| (0..6).map(|b| f(&AT, i, a) * u(a, b) * v(a, b) * f(&AT, j, b)).sum::<f64>()).sum();
                    let want: f64 = (0..3).map(|a| (0..3).map(|b| d[(i + a) * 6 + j + b] * g[a * 3 + b]).sum::<f64>()).sum();
                    // The matrices hold f32 roundings of 1/6, 1/12, 1/24.
                    assert!((y - want).abs() < 1e-6, "y[{i}][{j}] = {y}, want {want}");
                }
            }
        }
    }
}
