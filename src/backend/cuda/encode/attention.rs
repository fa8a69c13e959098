//! Fused attention: kernels/attention.cu (tensor cores, FlashAttention-2 scheme) for f16/bf16,
//! head dims 64, 72, 96, 128 and views aligned as it loads them; kernels/attention_fallback.cu
//! (one warp per query row, online softmax, 256 output dims per block) for everything else, any
//! head_dim.
use cudarc::driver::sys::CUdeviceptr;

use super::{elem, suffix, Encoder};
use crate::backend::Attention;
use crate::error::Result;
use crate::tensor::DType;

/// Head dims attention.cu is instantiated for.
const MMA_HEAD_DIMS: [usize; 4] = [64, 72, 96, 128];
/// Query rows per block of attention.cu (4 warps of 16) and of attention_fallback.cu (4 warps of 1).
const MMA_ROWS: usize = 64;
const FALLBACK_ROWS: usize = 4;
const THREADS: usize = 128;
/// Output dims per block of attention_fallback.cu (OUT_DIMS): a wider head takes more blocks.
const FALLBACK_OUT_DIMS: usize = 256;

/// Whether attention.cu's memory accesses are aligned for these views: q and out are moved as
/// 4-byte pairs, k and v as 16-byte vectors (8 elements, so head_dim % 8 == 0 too).
fn mma_aligned(op: &Attention, q: CUdeviceptr, k: CUdeviceptr, v: CUdeviceptr, out: CUdeviceptr) -> bool {
    let pairs = q.is_multiple_of(4) && out.is_multiple_of(4) && op.q_stride.is_multiple_of(2) && op.out_stride.is_multiple_of(2);
    pairs && k.is_multiple_of(16) && v.is_multiple_of(16) && op.kv_stride.is_multiple_of(8)
}

pub(super) fn attention(e: &Encoder, op: &Attention) -> Result<()> {
    let name = "attention";
    let dtype = elem(name, &[("q", &op.q), ("k", &op.k), ("v", &op.v), ("out", &op.out)], &[("bias", &op.bias)])?;
    let Attention { batch, heads, q_len, kv_len, head_dim, .. } = *op;
    if batch * q_len == 0 || heads * head_dim == 0 {
        return Ok(());
    }
    let (q, k, v, out) = (e.ptr(name, "q", &op.q)?, e.ptr(name, "k", &op.k)?, e.ptr(name, "v", &op.v)?, e.ptr(name, "out", &op.out)?);
    let bias = e.optional(name, "bias", &op.bias)?;
    let (pointers, sizes) = ([q.into(), k.into(), v.into(), bias.into(), out.into()], [q_len.into(), kv_len.into()]);
    let strides = [op.q_stride.into(), op.kv_stride.into(), op.out_stride.into()];
    let half = matches!(dtype, DType::F16 | DType::BF16);
    if half && MMA_HEAD_DIMS.contains(&head_dim) && mma_aligned(op, q, k, v, out) {
        let args: Vec<_> = pointers.into_iter().chain(sizes).chain(strides).chain([op.scale.into()]).collect();
        let function = format!("attention_mma_{}_d{head_dim}", suffix(dtype));
        return e.launch(name, &function, [q_len.div_ceil(MMA_ROWS), heads, batch], THREADS, &args);
    }
    let args: Vec<_> = pointers.into_iter().chain(sizes).chain([head_dim.into()]).chain(strides).chain([op.scale.into()]).collect();
    let function = format!("attention_fallback_{}", suffix(dtype));
    let grid = [q_len.div_ceil(FALLBACK_ROWS), heads * head_dim.div_ceil(FALLBACK_OUT_DIMS), batch];
    e.launch("attention_fallback", &function, grid, THREADS, &args)
}
