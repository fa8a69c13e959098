// Attention for heads wider than the fused shader's chunk, 3 of 3
// (src/backend/wgpu/lower/wide_attention.rs): out[r, d] = sum_j probs[r, j] v[j, d] for m query
// rows of one (sample, head), n = head_dim, summed over k keys, on lib/tiled_matmul.wgsl
// (x = the softmaxed scores in f32 scratch, rows k apart; w[d, j] = v[j, d]). Params in the
// order the lowering pushes them.

alias elem = f32;

// lib/tiled_matmul.wgsl: neighbouring dims of a value lie together, neighbouring keys do not.
const W_COLUMNS_FASTEST = true;

struct Params {
    m: u32, n: u32, k: u32,
    probs_off: u32,
    v_off: u32, kv_stride: u32,
    out_off: u32, out_stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> probs: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<elem>;
@group(0) @binding(3) var<storage, read_write> out: array<elem>;

fn load_x(r: u32, k: u32) -> f32 {
    return probs[p.probs_off + r * p.k + k];
}

fn load_w(col: u32, k: u32) -> f32 {
    return f32(v[p.v_off + k * p.kv_stride + col]);
}

fn store(r: u32, col: u32, acc: f32) {
    out[p.out_off + r * p.out_stride + col] = elem(acc);
}
