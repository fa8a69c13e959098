//! Fused attention for heads of up to 128 dims: one workgroup per (64 query rows, head, sample),
//! shaders/attention.wgsl, specialised to the head dim and to a block of keys whose tiles fit in
//! 16 KiB of workgroup memory (WebGPU's default limit, so one variant serves every adapter).
//! Wider heads go through the tiled product (wide_attention.rs).
use super::super::device::err;
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::ATTENTION;
use super::elem;
use crate::backend::Attention;
use crate::error::Result;
use crate::tensor::DType;

/// Query rows per workgroup (BLOCK_Q in the shader).
const BLOCK_Q: usize = 64;
/// Invocations per workgroup (THREADS in the shader): two per query row.
const THREADS: usize = 128;
/// The widest head the fused shader takes: each lane holds half of its query and accumulator,
/// 64 f32 each.
const MAX_HEAD_DIM: usize = 128;
/// Workgroup memory the fused shader may take: more would cost occupancy (and exceed WebGPU's
/// default limit), fewer keys per block cost barriers.
const WORKGROUP_BYTES: usize = 16 << 10;

/// The fused shader for heads of up to MAX_HEAD_DIM; wider ones as two products and a softmax
/// through scratch (wide_attention.rs).
pub(super) fn attention(op: &Attention, limits: &wgpu::Limits) -> Result<Vec<Dispatch>> {
    let dtype = elem("attention", &[("q", &op.q), ("k", &op.k), ("v", &op.v), ("out", &op.out)], &[("bias", &op.bias)])?;
    match op.head_dim > MAX_HEAD_DIM {
        true => super::wide_attention::attention(op, dtype, limits),
        false => Ok(vec![fused(op, dtype, limits)?]),
    }
}

/// Workgroup bytes of the fused shader with `block_kv` keys per block: the staged keys and
/// values (the head padded to 8 dims, f32) and a partial dot product per invocation and key.
fn workgroup_bytes(head_dim: usize, block_kv: usize) -> usize {
    block_kv * (2 * head_dim.next_multiple_of(8) + THREADS) * 4
}

fn fused(op: &Attention, dtype: DType, limits: &wgpu::Limits) -> Result<Dispatch> {
    let budget = WORKGROUP_BYTES.min(limits.max_compute_workgroup_storage_size as usize);
    let block_kv = [16, 8, 4].into_iter().find(|&b| workgroup_bytes(op.head_dim, b) <= budget).ok_or_else(|| {
        err(format!(
            "attention: heads of {} dims need {} bytes of workgroup memory, the adapter has {budget}",
            op.head_dim,
            workgroup_bytes(op.head_dim, 4)
        ))
    })?;
    Builder::new(&ATTENTION, vec![("elem", dtype)])
        .constant("HEAD_DIM", op.head_dim as u32)
        .constant("BLOCK_KV", block_kv as u32)
        .value(op.q_len)
        .value(op.kv_len)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BufId, View};
    use crate::tensor::DType;

    /// The keys per block attention is lowered with for heads of `head_dim` on an adapter with
    /// `workgroup_bytes` of workgroup memory, and the shader's workgroup bytes with them.
    fn block(workgroup_bytes: u32, head_dim: usize) -> (Vec<(&'static str, u32)>, usize) {
        let qkv = View { buf: BufId(0), offset: 0, len: 3 * head_dim, dtype: DType::F32 };
        let out = View { buf: BufId(1), offset: 0, len: head_dim, dtype: DType::F32 };
        let op = Attention::packed(1, 1, 1, head_dim, qkv, out, None);
        let limits = wgpu::Limits { max_compute_workgroup_storage_size: workgroup_bytes, ..Default::default() };
        let d = fused(&op, DType::F32, &limits).unwrap();
        let block_kv = d.consts[1].1 as usize;
        (d.consts, super::workgroup_bytes(head_dim, block_kv))
    }

    /// Every released head dim takes at most 16 KiB of workgroup memory, on a desktop adapter
    /// too: 16 keys per block at 64 dims (exactly 16 KiB), 8 from 72 to 128; an adapter with
    /// less gets smaller blocks.
    #[test]
    fn blocks_of_keys_fit_in_16_kib_of_workgroup_memory() {
        assert_eq!(block(48 << 10, 64), (vec![("HEAD_DIM", 64), ("BLOCK_KV", 16)], 16384));
        assert_eq!(block(16 << 10, 64), (vec![("HEAD_DIM", 64), ("BLOCK_KV", 16)], 16384));
        assert_eq!(block(48 << 10, 72), (vec![("HEAD_DIM", 72), ("BLOCK_KV", 8)], 8704));
        assert_eq!(block(16 << 10, 80), (vec![("HEAD_DIM", 80), ("BLOCK_KV", 8)], 9216));
        assert_eq!(block(16 << 10, 96), (vec![("HEAD_DIM", 96), ("BLOCK_KV", 8)], 10240));
        assert_eq!(block(16 << 10, 128), (vec![("HEAD_DIM", 128), ("BLOCK_KV", 8)], 12288));
        assert_eq!(block(10 << 10, 128), (vec![("HEAD_DIM", 128), ("BLOCK_KV", 4)], 6144));
    }

    /// Heads wider than 128 dims are three dispatches per (sample, head) and chunk of query
    /// rows, not the fused shader: the SD VAE's 512 over 4096 tokens (64 MiB of f32 scores)
    /// takes 4 chunks of 1024 rows (16 MiB each); within a 1 MiB binding limit 1000 tokens take
    /// chunks of 256 rows (the most whole tiles of 64 within it), 200 tokens one chunk.
    #[test]
    fn heads_wider_than_128_dims_go_through_the_product_in_chunks_of_query_rows() {
        let dispatches = |tokens: usize, binding_bytes: u64| {
            let qkv = View { buf: BufId(0), offset: 0, len: tokens * 3 * 512, dtype: DType::F32 };
            let out = View { buf: BufId(1), offset: 0, len: tokens * 512, dtype: DType::F32 };
            let limits = wgpu::Limits { max_storage_buffer_binding_size: binding_bytes, ..Default::default() };
            let lowered = attention(&Attention::packed(1, 1, tokens, 512, qkv, out, None), &limits).unwrap();
            lowered.iter().map(|d| (d.shader.name, d.params[0])).collect::<Vec<_>>()
        };
        let names = ["attention_scores", "attention_softmax", "attention_values"];
        let chunks = |rows: &[u32]| rows.iter().flat_map(|&m| names.map(|n| (n, m))).collect::<Vec<_>>();
        assert_eq!(dispatches(4096, 1 << 40), chunks(&[1024; 4]));
        assert_eq!(dispatches(200, 1 << 20), chunks(&[200]));
        assert_eq!(dispatches(1000, 1 << 20), chunks(&[256, 256, 256, 232]));
    }
}
