//! Fused attention for any head_dim: one workgroup per (16 query rows, head and 128-dim chunk
//! of its output, sample), shaders/attention.wgsl.
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::ATTENTION;
use super::elem;
use crate::backend::Attention;
use crate::error::Result;

/// Query rows per workgroup (BLOCK_Q in the shader).
const BLOCK_Q: usize = 16;
/// Head dims per chunk (CHUNK_DIMS in the shader): a workgroup writes one chunk of a head.
const CHUNK_DIMS: usize = 128;

pub(super) fn attention(op: &Attention) -> Result<Dispatch> {
    let dtype = elem("attention", &[("q", &op.q), ("k", &op.k), ("v", &op.v), ("out", &op.out)], &[("bias", &op.bias)])?;
    Builder::new(&ATTENTION, vec![("elem", dtype)])
        .value(op.q_len)
        .value(op.kv_len)
        .value(op.head_dim)
        .float(op.scale)
        .view("q", &op.q)
        .value(op.q_stride)
        .view("k", &op.k)
        .view("v", &op.v)
        .value(op.kv_stride)
        .optional("bias", &op.bias)
        .view("out", &op.out)
        .value(op.out_stride)
        .finish(Grid::Fixed([op.q_len.div_ceil(BLOCK_Q), op.heads * op.head_dim.div_ceil(CHUNK_DIMS), op.batch]))
}
