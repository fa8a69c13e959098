//! 3x3 convolutions (stride 1, padding 1) by Winograd F(4x4, 3x3) (`winograd_tiles`): per block
//! of tile rows, the input tiles are transformed (Bᵀ d B), each of the 36 Winograd-domain
//! positions is one product [out_c, in_c] x [in_c, tiles] against the transformed weights (kept
//! per weight, packed as the a operand), and the outputs transformed back (Aᵀ M A) + bias.
//! 4x fewer multiply-adds than the implicit GEMM (`im2col`) for the SD VAE's convolutions.
use super::winograd_tiles::{input_tiles, output_tiles, padded_row_len, weight_points, PATCH, POINTS, TILE};
use crate::backend::cpu::gemm::{product_into, Elems, Isa, MatRef, PackedA, PackedB};
use rayon::prelude::*;

/// Upper bound on the f32 elements of each of the two per-block buffers (transformed input and
/// products): 8 MiB. The SD VAE decode on 2 EPYC threads, runs alternated: 4, 8, 16 and 32 MiB
/// took 1050-1070, 930-960, 1000-1080 and 1160-1430 ms per forward.
pub const BLOCK_ELEMS: usize = 1 << 21;

/// A convolution's weights in the Winograd domain: for each position ξ, U_ξ = (G g Gᵀ)_ξ over
/// [out_c, in_c], packed as the a operand of the product.
///
/// The products are f32 for every storage dtype: bf16 products (U and the transformed input
/// rounded to bf16) lose about 2^-9 of values that the output transform then sums with weights up
/// to 64: simulated at 512 channels, 1.1x the bf16 op tolerance.
pub struct WinogradWeights {
    points: Vec<PackedA>,
    isa: Isa,
}

impl WinogradWeights {
    /// Transforms `weight` ([out_c, in_c, 3, 3], any stored dtype) in f64, rounded once to f32.
    pub fn new(weight: Elems, out_c: usize, in_c: usize, isa: Isa) -> WinogradWeights {
        // u[o][ξ][c]: U_ξ is the [out_c, in_c] matrix at ξ·in_c with row stride 36·in_c.
        let mut u = vec![0.0f32; out_c * POINTS * in_c];
        u.par_chunks_mut(POINTS * in_c).enumerate().for_each(|(o, row)| {
            let mut g = [0.0f32; 9];
            for c in 0..in_c {
                weight.line_f32((o * in_c + c) * 9, 1, &mut g);
                for (xi, p) in weight_points(&g.map(f64::from)).into_iter().enumerate() {
                    row[xi * in_c + c] = p as f32;
                }
            }
        });
        let points = (0..POINTS).map(|xi| PackedA::new(&[MatRef::new(&u[xi * in_c..], out_c, in_c, POINTS * in_c)], isa, false, true)).collect();
        WinogradWeights { points, isa }
    }
}

/// Reads input row `y` of channel `c` of image `b` (w pixels) into the slice.
pub type LoadRow<'f> = dyn Fn(usize, usize, usize, &mut [f32]) + Sync + 'f;
/// Receives output row `y` of channel `o` of image `b` (w pixels, bias added).
pub type StoreRow<'f> = dyn Fn(usize, usize, usize, &[f32]) + Sync + 'f;

/// The shape of one convolution: (batch, in_c, out_c, height, width); output size = input size.
pub type Shape = (usize, usize, usize, usize, usize);

/// out = conv3x3(x, weights) + bias, rows read by `load` and written by `store`, in blocks of
/// whole tile rows (across images) whose buffers hold at most `block_elems` f32 each.
pub fn conv3x3(shape: Shape, weights: &WinogradWeights, bias: Option<&[f32]>, load: &LoadRow, store: &StoreRow, block_elems: usize) {
    let (batch, in_c, out_c, h, w) = shape;
    let (tiles_y, tiles_x) = (h.div_ceil(TILE), w.div_ceil(TILE));
    let tile_rows = batch * tiles_y;
    if tile_rows * tiles_x * out_c == 0 {
        return;
    }
    let rows_per_block = (block_elems / (POINTS * tiles_x * in_c.max(out_c))).clamp(1, tile_rows);
    let mut v = vec![0.0f32; in_c * POINTS * rows_per_block * tiles_x];
    let mut m = vec![0.0f32; POINTS * out_c * rows_per_block * tiles_x];
    for r0 in (0..tile_rows).step_by(rows_per_block) {
        let rows = rows_per_block.min(tile_rows - r0);
        let t = rows * tiles_x;
        // Tile row r: image r / tiles_y, output rows 4 (r % tiles_y)...
        let at = |r: usize| ((r0 + r) / tiles_y, (r0 + r) % tiles_y * TILE);
        // v[c][ξ][tile]: the transformed input.
        v[..in_c * POINTS * t].par_chunks_mut(POINTS * t).enumerate().for_each_init(
            || vec![0.0f32; PATCH * padded_row_len(tiles_x)],
            |padded, (c, vc)| {
                let len = padded_row_len(tiles_x);
                for r in 0..rows {
                    let (b, y0) = at(r);
                    // Input rows y0 - 1 .. y0 + 5, zero outside the image and around it.
                    for (i, row) in padded.chunks_exact_mut(len).enumerate() {
                        row.fill(0.0);
                        if let Some(y) = (y0 + i).checked_sub(1).filter(|&y| y < h) {
                            load(b, c, y, &mut row[1..=w]);
                        }
                    }
                    let rows6: [&[f32]; PATCH] = std::array::from_fn(|i| &padded[i * len..(i + 1) * len]);
                    input_tiles(rows6, tiles_x, &mut vc[r * tiles_x..], t);
                }
            },
        );
        // m[ξ][o][tile] = U_ξ · v[:, ξ, :], one position per task.
        m[..POINTS * out_c * t].par_chunks_mut(out_c * t).enumerate().for_each(|(xi, m_xi)| {
            let b = PackedB::new(MatRef::new(&v[xi * t..], in_c, t, POINTS * t), weights.isa, false, false);
            product_into(&weights.points[xi], &b, m_xi, false, false);
        });
        // out = Aᵀ m A + bias, one output channel per task.
        (0..out_c).into_par_iter().for_each_init(
            || vec![0.0f32; TILE * TILE * tiles_x],
            |out_rows, o| {
                let bias = bias.map_or(0.0, |bias| bias[o]);
                for r in 0..rows {
                    let (b, y0) = at(r);
                    let mut four = out_rows.chunks_exact_mut(TILE * tiles_x);
                    let four = std::array::from_fn(|_| four.next().expect("four output rows"));
                    output_tiles(&m[o * t + r * tiles_x..], out_c * t, tiles_x, bias, four);
                    for (i, row) in out_rows.chunks_exact(TILE * tiles_x).enumerate().take(h.saturating_sub(y0)) {
                        store(b, o, y0 + i, &row[..w]);
                    }
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::sync::Mutex;

    /// Whole convolutions against the direct f64 sum: images whose sides are not multiples of
    /// the tile (and smaller than one), blocks of one tile row that start mid-image and cross
    /// images, and one block for everything; every kernel family.
    #[test]
    fn blocks_and_edges_equal_the_direct_convolution() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for (batch, in_c, out_c, h, w, block_elems) in [(2, 3, 5, 9, 6, 1), (3, 4, 2, 1, 2, 1), (2, 5, 3, 7, 13, 1 << 20), (1, 17, 9, 8, 8, 2000)] {
            let x: Vec<f32> = (0..batch * in_c * h * w).map(|_| rng.random_range(-1.0..1.0)).collect();
            let weight: Vec<f32> = (0..out_c * in_c * 9).map(|_| rng.random_range(-1.0..1.0)).collect();
            let bias: Vec<f32> = (0..out_c).map(|_| rng.random_range(-1.0..1.0)).collect();
            for isa in Isa::available() {
                let weights = WinogradWeights::new(Elems::F32(&weight), out_c, in_c, isa);
                let out = Mutex::new(vec![f32::NAN; batch * out_c * h * w]);
                let load = |b: usize, c: usize, y: usize, row: &mut [f32]| row.copy_from_slice(&x[((b * in_c + c) * h + y) * w..][..w]);
                let store =
                    |b: usize, o: usize, y: usize, row: &[f32]| out.lock().unwrap()[((b * out_c + o) * h + y) * w..][..w].copy_from_slice(row);
                conv3x3((batch, in_c, out_c, h, w), &weights, Some(&bias), &load, &store, block_elems);
                let out = out.into_inner().unwrap();
                let want: Vec<f64> = (0..out.len())
                    .map(|i| {
                        let (b, o, y, xo) = (i / (out_c * h * w), i / (h * w) % out_c, i / w % h, i % w);
                        let mut sum = f64::from(bias[o]);
                        for c in 0..in_c {
                            for k in 0..9 {
                                let (yy, xx) = ((y + k / 3).wrapping_sub(1), (xo + k % 3).wrapping_sub(1));
                                if yy < h && xx < w {
                                    sum += f64::from(x[((b * in_c + c) * h + yy) * w + xx]) * f64::from(weight[(o * in_c + c) * 9 + k]);
                                }
                            }
                        }
                        sum
                    })
                    .collect();
                // The f32 op tolerance: relative to the largest output, plus an absolute floor.
                let allowed = 1e-5 * want.iter().fold(0.0f64, |m, w| m.max(w.abs())) + 1e-6;
                for (i, (&got, want)) in out.iter().zip(want).enumerate() {
                    assert!(
                        (f64::from(got) - want).abs() <= allowed,
                        "{isa:?} batch {batch} {in_c}->{out_c} {h}x{w} block {block_elems}: element {i}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
