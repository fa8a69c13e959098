//! Fused attention for heads of up to 128 dims: one workgroup per (16 query rows, head and
//! 128-dim chunk of its output, sample), shaders/attention.wgsl; 64-dim chunks on adapters with
//! under 20 KiB of workgroup memory (WebGPU's default is 16). Wider heads go through the tiled
//! product (wide_attention.rs).
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::ATTENTION;
use super::elem;
use crate::backend::Attention;
use crate::error::Result;
use crate::tensor::DType;

/// Query rows per workgroup (BLOCK_Q in the shader).
const BLOCK_Q: usize = 16;
/// Head dims per chunk (CHUNK_DIMS in the shader) at most: a workgroup writes one chunk of a head.
const CHUNK_DIMS: usize = 128;
/// Invocations per query row (LANES in the shader), each holding every LANES-th vec4 of a chunk.
const LANES: usize = 4;
/// Workgroup memory the shader takes with CHUNK_DIMS (16 KiB of staged keys and values, 4 KiB
/// of partial dot products); with half the chunk it takes 12 KiB, within WebGPU's default 16.
const WORKGROUP_BYTES: u32 = 20 << 10;

/// The fused shader for heads of up to CHUNK_DIMS (one chunk: the softmax is computed once per
/// query row, or twice per 128 dims on adapters with 64-dim chunks); wider ones, whose every
/// chunk would redo it, as two products and a softmax through scratch (wide_attention.rs).
pub(super) fn attention(op: &Attention, limits: &wgpu::Limits) -> Result<Vec<Dispatch>> {
    let dtype = elem("attention", &[("q", &op.q), ("k", &op.k), ("v", &op.v), ("out", &op.out)], &[("bias", &op.bias)])?;
    match op.head_dim > CHUNK_DIMS {
        true => super::wide_attention::attention(op, dtype, limits),
        false => Ok(vec![fused(op, dtype, limits)?]),
    }
}

fn fused(op: &Attention, dtype: DType, limits: &wgpu::Limits) -> Result<Dispatch> {
    let widest = if limits.max_compute_workgroup_storage_size >= WORKGROUP_BYTES { CHUNK_DIMS } else { CHUNK_DIMS / 2 };
    // A head narrower than the chunk gets a chunk of its own width, rounded up to whole vec4s of
    // every lane: d72 takes 5 vec4s per lane, not 8 (fewer registers and staged bytes).
    let chunk = widest.min(op.head_dim.next_multiple_of(4 * LANES));
    Builder::new(&ATTENTION, vec![("elem", dtype)])
        .constant("CHUNK_DIMS", chunk as u32)
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
        .finish(Grid::Fixed([op.q_len.div_ceil(BLOCK_Q), op.heads * op.head_dim.div_ceil(chunk), op.batch]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BufId, View};
    use crate::tensor::DType;

    /// The chunk attention is lowered with on an adapter with `workgroup_bytes` of workgroup
    /// memory, and its workgroups per query tile and sample (heads * chunks per head).
    fn chunk(workgroup_bytes: u32, heads: usize, head_dim: usize) -> (Vec<(&'static str, u32)>, usize) {
        let qkv = View { buf: BufId(0), offset: 0, len: 3 * heads * head_dim, dtype: DType::F32 };
        let out = View { buf: BufId(1), offset: 0, len: heads * head_dim, dtype: DType::F32 };
        let op = Attention::packed(1, heads, 1, head_dim, qkv, out, None);
        let limits = wgpu::Limits { max_compute_workgroup_storage_size: workgroup_bytes, ..Default::default() };
        let d = fused(&op, DType::F32, &limits).unwrap();
        let Grid::Fixed([_, y, _]) = d.grid else { panic!("attention's grid is explicit") };
        (d.consts, y)
    }

    /// The 128-dim chunk takes 20 KiB of workgroup memory: below that (WebGPU's default 16 KiB)
    /// heads are cut into 64-dim chunks, twice as many workgroups; a narrower head takes a chunk
    /// of its width rounded up to 16 (DiT-XL/2's 72: 80).
    #[test]
    fn adapters_with_under_20_kib_of_workgroup_memory_get_64_dim_chunks() {
        assert_eq!(chunk(20 << 10, 16, 72), (vec![("CHUNK_DIMS", 80)], 16));
        assert_eq!(chunk(20 << 10, 1, 128), (vec![("CHUNK_DIMS", 128)], 1));
        assert_eq!(chunk(16 << 10, 16, 72), (vec![("CHUNK_DIMS", 64)], 32));
        assert_eq!(chunk(16 << 10, 1, 128), (vec![("CHUNK_DIMS", 64)], 2));
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
