//! Fused attention: every head's K and V are packed once (in parallel), then per (sample, head,
//! tile of Q_TILE query rows) one task computes the scores of its tile against every key, a row
//! softmax, and the tile of P V, both products on the calling thread. Scores never exist beyond
//! one [Q_TILE, kv_len] tile per task. With bf16 storage both products are bf16 x bf16 where the
//! CPU has them (P rounded to bf16, as GPU flash attention does), accumulated in f32.
use super::gemm::{matmul_packed, Isa, MatRef, PackedB};
use super::math::exp;
use super::memory::Views;
use super::{parallel, simd};
use crate::backend::Attention;
use crate::error::Result;
use crate::tensor::DType;
use rayon::prelude::*;

/// Query rows per task.
const Q_TILE: usize = 32;

pub(super) fn attention(views: &Views, op: &Attention) -> Result<()> {
    let name = "attention";
    let Attention { batch, heads, q_len, kv_len, head_dim: hd, q_stride, kv_stride, out_stride, .. } = *op;
    let q = views.src(name, "q", &op.q)?;
    let k = views.src(name, "k", &op.k)?;
    let v = views.src(name, "v", &op.v)?;
    let bias = op.bias.as_ref().map(|b| views.src(name, "bias", b)).transpose()?;
    let out = views.dst(name, "out", &op.out)?;
    if batch * q_len == 0 || heads * hd == 0 {
        return Ok(());
    }
    let bf16 = [q.dtype(), k.dtype(), v.dtype()].iter().all(|&d| d == DType::BF16);
    let (q, k, v, bias) = (q.elems(), k.elems(), v.elems(), bias.map(|b| b.values()));
    let heads_of = |bh: usize| bh / heads * kv_len * kv_stride + bh % heads * hd;
    let packed: Vec<(PackedB, PackedB)> = (0..batch * heads)
        .into_par_iter()
        .map(|bh| {
            let k_head = MatRef::new(k.skip(heads_of(bh)), kv_len, hd, kv_stride);
            let v_head = MatRef::new(v.skip(heads_of(bh)), kv_len, hd, kv_stride);
            (PackedB::new(k_head.t(), Isa::best(), bf16, false), PackedB::new(v_head, Isa::best(), bf16, false))
        })
        .collect();

    let tiles = q_len.div_ceil(Q_TILE);
    let tile_work = Q_TILE * kv_len * hd;
    let scratch = || (vec![0.0f32; Q_TILE * kv_len], vec![0.0f32; Q_TILE * hd]);
    parallel::for_each_index(batch * heads * tiles, tile_work, scratch, |(scores, tile_out), task| {
        let (b, h, tile) = (task / (heads * tiles), task / tiles % heads, task % tiles);
        let first = tile * Q_TILE;
        let rows = Q_TILE.min(q_len - first);
        let q_tile = MatRef::new(q.skip((b * q_len + first) * q_stride + h * hd), rows, hd, q_stride);
        let (k_head, v_head) = &packed[b * heads + h];
        let scores = &mut scores[..rows * kv_len];
        matmul_packed(q_tile, k_head, scores, false, false);
        simd::vectorized(|| {
            for (r, row) in scores.chunks_exact_mut(kv_len).enumerate() {
                row.iter_mut().for_each(|s| *s *= op.scale);
                if let Some(bias) = &bias {
                    let at = (h * q_len + first + r) * kv_len;
                    row.iter_mut().zip(&bias[at..at + kv_len]).for_each(|(s, b)| *s += b);
                }
                softmax(row);
            }
        });
        let tile_out = &mut tile_out[..rows * hd];
        matmul_packed(MatRef::new(&*scores, rows, kv_len, kv_len), v_head, tile_out, false, false);
        for (r, row) in tile_out.chunks_exact(hd).enumerate() {
            out.store((b * q_len + first + r) * out_stride + h * hd, row);
        }
    });
    Ok(())
}

/// In-place softmax of one row, shifted by its max so exp cannot overflow.
#[inline(always)]
fn softmax(row: &mut [f32]) {
    let max = simd::max(row);
    row.iter_mut().for_each(|s| *s = exp(*s - max));
    let inv = 1.0 / simd::sum(row);
    row.iter_mut().for_each(|s| *s *= inv);
}
