// skip_concat_linear: out[r, col] = sum_k [x, skip][r, k] w[col, k] + bias[col] without the
// concat: load_x reads column k of x or of skip. On lib/tiled_matmul.wgsl, with
// k = dim_x + dim_skip. Params in the order src/backend/wgpu/lower/linear.rs pushes them.

alias elem = f32;

// lib/tiled_matmul.wgsl: w's rows run along k.
const W_COLUMNS_FASTEST = false;

struct Params {
    m: u32, n: u32, k: u32,
    dim_x: u32,
    x_off: u32, skip_off: u32, w_off: u32,
    has_bias: u32, bias_off: u32,
    out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> skip: array<elem>;
@group(0) @binding(3) var<storage, read_write> w: array<elem>;
@group(0) @binding(4) var<storage, read_write> bias: array<elem>;
@group(0) @binding(5) var<storage, read_write> out: array<elem>;

fn load_x(r: u32, k: u32) -> f32 {
    if (k < p.dim_x) {
        return f32(x[p.x_off + r * p.dim_x + k]);
    }
    let dim_skip = p.k - p.dim_x;
    return f32(skip[p.skip_off + r * dim_skip + k - p.dim_x]);
}

fn load_w(col: u32, k: u32) -> f32 {
    return f32(w[p.w_off + col * p.k + k]);
}

fn store(r: u32, col: u32, acc: f32) {
    var v = acc;
    if (p.has_bias != 0u) {
        v += f32(bias[p.bias_off + col]);
    }
    out[p.out_off + r * p.n + col] = elem(v);
}
