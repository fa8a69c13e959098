// gemm: out[r, col] (+)= act(sum_k x[r, k] w[col, k] + bias[col]), on lib/tiled_matmul.wgsl
// (after lib/activation.wgsl); out's rows are out_stride apart (a dispatch may compute a block
// of columns of a wider out). Params in the order src/backend/wgpu/lower/linear.rs pushes them.

alias elem = f32;

// lib/tiled_matmul.wgsl: w's rows run along k.
const W_COLUMNS_FASTEST = false;

struct Params {
    m: u32, n: u32, k: u32,
    x_off: u32, x_stride: u32,
    w_off: u32, w_stride: u32,
    has_bias: u32, bias_off: u32,
    out_off: u32, out_stride: u32,
    act: u32, accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> w: array<elem>;
@group(0) @binding(3) var<storage, read_write> bias: array<elem>;
@group(0) @binding(4) var<storage, read_write> out: array<elem>;

fn load_x(r: u32, k: u32) -> f32 {
    return f32(x[p.x_off + r * p.x_stride + k]);
}

fn load_w(col: u32, k: u32) -> f32 {
    return f32(w[p.w_off + col * p.w_stride + k]);
}

fn store(r: u32, col: u32, acc: f32) {
    var v = acc;
    if (p.has_bias != 0u) {
        v += f32(bias[p.bias_off + col]);
    }
    v = activate(p.act, v);
    let i = p.out_off + r * p.out_stride + col;
    if (p.accumulate != 0u) {
        v += f32(out[i]);
    }
    out[i] = elem(v);
}
