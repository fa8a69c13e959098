// Attention for heads wider than the fused shader's chunk, 1 of 3
// (src/backend/wgpu/lower/wide_attention.rs): scores[r, j] = q_r . k_j * scale + bias[r, j] for
// m query rows of one (sample, head) against its n keys, summed over k = head_dim, on
// lib/tiled_matmul.wgsl (x = q, w = k: both run along the head's dims), into f32 scratch with
// rows n apart. bias is the head's [q_len, n] slice from the chunk's first row. Params in the
// order the lowering pushes them.

alias elem = f32;

// lib/tiled_matmul.wgsl: a key's dims lie together.
const W_COLUMNS_FASTEST = false;

struct Params {
    m: u32, n: u32, k: u32,
    scale: f32,
    q_off: u32, q_stride: u32,
    keys_off: u32, kv_stride: u32,
    has_bias: u32, bias_off: u32,
    scores_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> queries: array<elem>;
@group(0) @binding(2) var<storage, read_write> keys: array<elem>;
@group(0) @binding(3) var<storage, read_write> bias: array<elem>;
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;

fn load_x(r: u32, k: u32) -> f32 {
    return f32(queries[p.q_off + r * p.q_stride + k]);
}

fn load_w(col: u32, k: u32) -> f32 {
    return f32(keys[p.keys_off + col * p.kv_stride + k]);
}

fn store(r: u32, col: u32, acc: f32) {
    var s = acc * p.scale;
    if (p.has_bias != 0u) {
        s += f32(bias[p.bias_off + r * p.n + col]);
    }
    scores[p.scores_off + r * p.n + col] = s;
}
