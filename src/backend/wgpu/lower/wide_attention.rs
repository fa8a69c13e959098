//! Attention for heads wider than the fused shader's chunk (the SD VAE's 512): the fused shader
//! would cut the head into chunks that each redo the whole softmax, so instead, per (sample,
//! head) and chunk of query rows, three dispatches through f32 scratch: the scores
//! q kᵀ * scale + bias on the tiled product (shaders/attention_scores.wgsl), their row softmax
//! (attention_softmax.wgsl), and the product of those probabilities with v
//! (attention_values.wgsl). The chunk bounds the scores: the VAE at 512 px has 4096 tokens,
//! 64 MiB of f32 scores per head and image.
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::{ATTENTION_SCORES, ATTENTION_SOFTMAX, ATTENTION_VALUES};
use super::binding_elems;
use super::linear::{block, tiles};
use crate::backend::Attention;
use crate::error::Result;
use crate::tensor::DType;
use std::ops::Range;

/// Bytes of scores one chunk of query rows may hold at most (and the binding limit): 16 MiB,
/// 1024 of the VAE's 4096 query rows at 512 px, whose chunk still has 16 x 64 tiles of scores
/// and 16 x 8 of output for a GPU's workgroups.
const SCORES_BYTES: usize = 16 << 20;

pub(super) fn attention(op: &Attention, dtype: DType, limits: &wgpu::Limits) -> Result<Vec<Dispatch>> {
    let fit = binding_elems(limits, DType::F32).min(SCORES_BYTES / 4);
    let rows = block(op.q_len, fit / op.kv_len.max(1));
    let mut dispatches = Vec::new();
    for b in 0..op.batch {
        for h in 0..op.heads {
            for r0 in (0..op.q_len).step_by(rows) {
                dispatches.extend(chunk(op, dtype, (b, h), r0..op.q_len.min(r0 + rows))?);
            }
        }
    }
    Ok(dispatches)
}

/// The three dispatches of query rows `rows` of head `h` of sample `b`.
fn chunk(op: &Attention, dtype: DType, (b, h): (usize, usize), rows: Range<usize>) -> Result<[Dispatch; 3]> {
    let (m, n, hd) = (rows.len(), op.kv_len, op.head_dim);
    let words = m * n;
    // The head's rows from the chunk's first (q, out) or from the sample's first key (k, v).
    let q = op.q.slice((b * op.q_len + rows.start) * op.q_stride + h * hd, (m - 1) * op.q_stride + hd);
    let out = op.out.slice((b * op.q_len + rows.start) * op.out_stride + h * hd, (m - 1) * op.out_stride + hd);
    let kv_span = (n - 1) * op.kv_stride + hd;
    let (k, v) = (op.k.slice(b * n * op.kv_stride + h * hd, kv_span), op.v.slice(b * n * op.kv_stride + h * hd, kv_span));
    let bias = op.bias.map(|bias| bias.slice((h * op.q_len + rows.start) * n, words));
    let scores = Builder::new(&ATTENTION_SCORES, vec![("elem", dtype)])
        .part_of("q", &op.q)
        .part_of("k", &op.k)
        .value(m)
        .value(n)
        .value(hd)
        .float(op.scale)
        .view("q", &q)
        .value(op.q_stride)
        .view("k", &k)
        .value(op.kv_stride)
        .optional("bias", &bias)
        .scratch("scores", words)
        .finish(tiles(m, n))?;
    let softmax = Builder::new(&ATTENTION_SOFTMAX, Vec::new()).value(m).value(n).scratch("scores", words).finish(Grid::Flat(m))?;
    let values = Builder::new(&ATTENTION_VALUES, vec![("elem", dtype)])
        .part_of("v", &op.v)
        .part_of("out", &op.out)
        .value(m)
        .value(hd)
        .value(n)
        .scratch("probs", words)
        .view("v", &v)
        .value(op.kv_stride)
        .view("out", &out)
        .value(op.out_stride)
        .finish(tiles(m, hd))?;
    Ok([scores, softmax, values])
}
