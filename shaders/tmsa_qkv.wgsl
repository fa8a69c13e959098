// tmsa_qkv: out[b, t, col] = sum_k x[b, t, k] w[col, k] + bias[col] + time[b, col], on
// lib/tiled_matmul.wgsl with rows r = b * tokens + t. Params in the order
// src/backend/wgpu/lower/linear.rs pushes them.

alias elem = f32;

// lib/tiled_matmul.wgsl: w's rows run along k.
const W_COLUMNS_FASTEST = false;

struct Params {
    m: u32, n: u32, k: u32,
    tokens: u32,
    x_off: u32, w_off: u32,
    has_bias: u32, bias_off: u32,
    time_off: u32, out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> w: array<elem>;
@group(0) @binding(3) var<storage, read_write> bias: array<elem>;
@group(0) @binding(4) var<storage, read_write> time: array<elem>;
@group(0) @binding(5) var<storage, read_write> out: array<elem>;

fn load_x(r: u32, k: u32) -> f32 {
    return f32(x[p.x_off + r * p.k + k]);
}

fn load_w(col: u32, k: u32) -> f32 {
    return f32(w[p.w_off + col * p.k + k]);
}

fn store(r: u32, col: u32, acc: f32) {
    var v = acc + f32(time[p.time_off + r / p.tokens * p.n + col]);
    if (p.has_bias != 0u) {
        v += f32(bias[p.bias_off + col]);
    }
    out[p.out_off + r * p.n + col] = elem(v);
}
