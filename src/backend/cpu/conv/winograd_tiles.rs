//! Winograd F(4x4, 3x3) tile transforms (Lavin & Gray 2016, "Fast Algorithms for Convolutional
//! Neural Networks", eq. 8): a 4x4 tile of a 3x3 convolution (cross-correlation, as deep
//! learning convolves) is Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A over the 6x6 input patch d: 36
//! products per tile instead of 144.
//!
//! The interpolation points are 0, 1, -1, 1/2, -2 and ∞ instead of the usual 0, ±1, ±2, ∞: one
//! point swapped for its reciprocal keeps the transforms' entries small (Barabasz et al. 2020,
//! "Error analysis and improving the accuracy of Winograd convolution for deep neural
//! networks"). Simulated in f32 at 512 input channels, the largest error was 0.25 of the f32 op
//! tolerance with these points and 0.72 with ±2 (which failed it on larger images).
//!
//! The transforms run over a row of tiles at once, one lane per tile, so each is a few
//! vectorised multiply-adds per value.

use crate::backend::cpu::simd::vectorized_fn;

/// Output pixels per tile side.
pub const TILE: usize = 4;
/// Input pixels per tile side (TILE + 2).
pub const PATCH: usize = 6;
/// Winograd-domain values per tile (PATCH²): one product per value.
pub const POINTS: usize = PATCH * PATCH;
/// Tiles transformed together: one AVX-512 vector of each value.
pub const LANES: usize = 16;

/// One value of LANES tiles.
type Lanes = [f32; LANES];

/// G: the weight transform, exact fractions applied in f64 (once per weight).
const G: [[f64; 3]; PATCH] = [
    [1.0, 0.0, 0.0],
    [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0],
    [-1.0 / 3.0, 1.0 / 3.0, -1.0 / 3.0],
    [-16.0 / 15.0, -8.0 / 15.0, -4.0 / 15.0],
    [1.0 / 15.0, -2.0 / 15.0, 4.0 / 15.0],
    [0.0, 0.0, 1.0],
];

/// G g Gᵀ for one 3x3 kernel `g` (row-major), value ξ = 6·k1 + k2.
pub fn weight_points(g: &[f64; 9]) -> [f64; POINTS] {
    // gg[k1][b] = Σ_a G[k1][a] g[a][b], then out[k1][k2] = Σ_b gg[k1][b] G[k2][b].
    let gg: [[f64; 3]; PATCH] = std::array::from_fn(|k1| std::array::from_fn(|b| (0..3).map(|a| G[k1][a] * g[3 * a + b]).sum()));
    std::array::from_fn(|xi| (0..3).map(|b| gg[xi / PATCH][b] * G[xi % PATCH][b]).sum())
}

/// r = Bᵀ d along one axis, lane by lane (d[j] = `d(j)`). Bᵀ (rows):
/// [1, -3/2, -2, 3/2, 1, 0], [0, -1, 1/2, 5/2, 1, 0], [0, 1, -5/2, 1/2, 1, 0],
/// [0, -2, -1, 2, 1, 0], [0, 1/2, -1, -1/2, 1, 0], [0, 1, -3/2, -2, 3/2, 1].
#[inline(always)]
fn bt<'a>(d: impl Fn(usize) -> &'a Lanes, r: &mut [Lanes; PATCH]) {
    let (d0, d1, d2, d3, d4, d5) = (d(0), d(1), d(2), d(3), d(4), d(5));
    for l in 0..LANES {
        r[0][l] = d0[l] - 1.5 * d1[l] - 2.0 * d2[l] + 1.5 * d3[l] + d4[l];
        r[1][l] = -d1[l] + 0.5 * d2[l] + 2.5 * d3[l] + d4[l];
        r[2][l] = d1[l] - 2.5 * d2[l] + 0.5 * d3[l] + d4[l];
        r[3][l] = -2.0 * d1[l] - d2[l] + 2.0 * d3[l] + d4[l];
        r[4][l] = 0.5 * d1[l] - d2[l] - 0.5 * d3[l] + d4[l];
        r[5][l] = d1[l] - 1.5 * d2[l] - 2.0 * d3[l] + 1.5 * d4[l] + d5[l];
    }
}

/// r = Aᵀ m along one axis, lane by lane (m[k] = `m(k)`). Aᵀ (rows): [1, 1, 1, 1, 1, 0],
/// [0, 1, -1, 1/2, -2, 0], [0, 1, 1, 1/4, 4, 0], [0, 1, -1, 1/8, -8, 1].
#[inline(always)]
fn at<'a>(m: impl Fn(usize) -> &'a Lanes, r: &mut [Lanes; TILE]) {
    let (m0, m1, m2, m3, m4, m5) = (m(0), m(1), m(2), m(3), m(4), m(5));
    for l in 0..LANES {
        let (sum, diff) = (m1[l] + m2[l], m1[l] - m2[l]);
        r[0][l] = m0[l] + sum + m3[l] + m4[l];
        r[1][l] = diff + 0.5 * m3[l] - 2.0 * m4[l];
        r[2][l] = sum + 0.25 * m3[l] + 4.0 * m4[l];
        r[3][l] = diff + 0.125 * m3[l] - 8.0 * m4[l] + m5[l];
    }
}

/// dst[..n] = src[..n] for n <= LANES, a fixed-size vector move for whole vectors (a
/// variable-length copy is a `memmove` call per vector).
#[inline(always)]
fn copy_lanes(dst: &mut [f32], src: &[f32], n: usize) {
    if n == LANES {
        dst[..LANES].copy_from_slice(&src[..LANES]);
    } else {
        dst[..n].copy_from_slice(&src[..n]);
    }
}

/// Length of the zero-padded input rows `input_tiles` reads for `tiles` tiles.
pub fn padded_row_len(tiles: usize) -> usize {
    TILE * tiles.next_multiple_of(LANES) + 2
}

vectorized_fn! {
    /// Bᵀ d B of every tile of one row of `tiles` tiles: `rows[i]` is input row 4·ty − 1 + i with one
    /// zero before pixel 0 and zeros after the last, `padded_row_len(tiles)` long; value
    /// ξ = 6·k1 + k2 of tile t goes to `out[ξ * stride + t]`.
    pub fn input_tiles(rows: [&[f32]; PATCH], tiles: usize, out: &mut [f32], stride: usize) {
        let mut d = [[0.0; LANES]; PATCH];
        let mut half = [[[0.0; LANES]; PATCH]; PATCH];
        let mut v = [[0.0; LANES]; PATCH];
        for t0 in (0..tiles).step_by(LANES) {
            let n = LANES.min(tiles - t0);
            // Along x: half[i][k2] = Σ_j Bᵀ[k2][j] · d[i][j], d[i][j] of tile t = rows[i][4t + j].
            for (row, half) in rows.iter().zip(&mut half) {
                let row = &row[TILE * t0..][..TILE * LANES + 2];
                for (j, d) in d.iter_mut().enumerate() {
                    d.iter_mut().enumerate().for_each(|(l, d)| *d = row[TILE * l + j]);
                }
                bt(|j| &d[j], half);
            }
            // Along y: out[k1][k2] = Σ_i Bᵀ[k1][i] · half[i][k2].
            for k2 in 0..PATCH {
                bt(|i| &half[i][k2], &mut v);
                for (k1, v) in v.iter().enumerate() {
                    copy_lanes(&mut out[(k1 * PATCH + k2) * stride + t0..], v, n);
                }
            }
        }
    }
}

vectorized_fn! {
    /// Aᵀ M A of every tile of one row of `tiles` tiles: value ξ of tile t at `m[ξ * stride + t]`;
    /// output row i of tile t, pixel j, goes to `rows[i][4t + j]` (each row at least 4·tiles long),
    /// plus `bias`.
    pub fn output_tiles(m: &[f32], stride: usize, tiles: usize, bias: f32, rows: [&mut [f32]; TILE]) {
        let mut rows = rows;
        let mut values = [[0.0; LANES]; PATCH];
        let mut half = [[[0.0; LANES]; TILE]; PATCH];
        let mut y = [[0.0; LANES]; TILE];
        for t0 in (0..tiles).step_by(LANES) {
            let n = LANES.min(tiles - t0);
            // Along y: half[k2][i] = Σ_k1 Aᵀ[i][k1] · m[k1][k2].
            for (k2, half) in half.iter_mut().enumerate() {
                for (k1, value) in values.iter_mut().enumerate() {
                    copy_lanes(value, &m[(k1 * PATCH + k2) * stride + t0..], n);
                }
                at(|k1| &values[k1], half);
            }
            // Along x: rows[i][4t + j] = Σ_k2 Aᵀ[j][k2] · half[k2][i] + bias.
            for (i, row) in rows.iter_mut().enumerate() {
                at(|k2| &half[k2][i], &mut y);
                let row = &mut row[TILE * t0..TILE * (t0 + n)];
                row.iter_mut().enumerate().for_each(|(p, o)| *o = y[p % TILE][p / TILE] + bias);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// One row of tiles through input transform, pointwise products and output transform
    /// equals the 3x3 cross-correlation computed directly in f64, tile edges included.
    #[test]
    fn tiles_equal_the_direct_convolution() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let tiles = 21; // a whole vector of tiles and a partial one
        let width = padded_row_len(tiles);
        let image: Vec<Vec<f32>> = (0..PATCH).map(|_| (0..width).map(|_| rng.random_range(-1.0..1.0)).collect()).collect();
        let g: [f64; 9] = std::array::from_fn(|_| rng.random_range(-1.0..1.0));
        let mut v = vec![0.0; POINTS * tiles];
        input_tiles(std::array::from_fn(|i| &image[i][..]), tiles, &mut v, tiles);
        let u = weight_points(&g);
        let m: Vec<f32> = v.iter().enumerate().map(|(i, &v)| v * u[i / tiles] as f32).collect();
        let mut out = vec![vec![0.0; TILE * tiles]; TILE];
        let [r0, r1, r2, r3] = &mut out[..] else { unreachable!() };
        output_tiles(&m, tiles, tiles, 0.5, [r0, r1, r2, r3]);
        for (y, row) in out.iter().enumerate() {
            for (x, &got) in row.iter().enumerate() {
                let want: f64 = 0.5 + (0..9).map(|i| f64::from(image[y + i / 3][x + i % 3]) * g[i]).sum::<f64>();
                assert!((f64::from(got) - want).abs() < 1e-5, "pixel ({y}, {x}): {got} vs {want}");
            }
        }
    }
}
