//! Fused attention: one workgroup per (16 query rows, head, sample), shaders/attention.wgsl.
use super::super::device::err;
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::ATTENTION;
use super::elem;
use crate::backend::Attention;
use crate::error::Result;

/// Query rows per workgroup (BLOCK_Q in the shader).
const BLOCK_Q: usize = 16;
/// The longest head the shader holds in registers (MAX_HEAD_DIM).
const MAX_HEAD_DIM: usize = 128;

pub(super) fn attention(op: &Attention) -> Result<Dispatch> {
    let dtype = elem("attention", &[("q", &op.q), ("k", &op.k), ("v", &op.v), ("out", &op.out)], &[("bias", &op.bias)])?;
    if op.head_dim > MAX_HEAD_DIM {
        return Err(err(format!("attention: head_dim {} is more than the {MAX_HEAD_DIM} the wgpu shader holds", op.head_dim)));
    }
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
        .finish(Grid::Fixed([op.q_len.div_ceil(BLOCK_Q), op.heads, op.batch]))
}
