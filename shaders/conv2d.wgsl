// conv2d (stride 1, zero padding) as an implicit GEMM on lib/tiled_matmul.wgsl: rows are
// output channels, columns are output pixels of every sample (col = b * out_h * out_w + pixel),
// k runs over (input channel, ky, kx), and load_w gathers the im2col column on the fly, so
// neighbouring invocations store neighbouring pixels. A dispatch may compute a block: m of the
// out_channels output channels from k / kernel^2 of x's x_channels input channels (weight
// rows w_stride apart), adding to out what is there (accumulate) for blocks of input
// channels after the first. Params in the order src/backend/wgpu/lower/linear.rs pushes them.

alias elem = f32;

// lib/tiled_matmul.wgsl: columns are output pixels: neighbours in the image.
const W_COLUMNS_FASTEST = true;

// The kernel size, redeclared by the lowering (src/backend/wgpu/lower/linear.rs): the gather's
// divisions by it are by a constant.
const KERNEL: u32 = 3u;

struct Params {
    m: u32, n: u32, k: u32,
    height: u32, width: u32,
    pad: u32,
    out_h: u32, out_w: u32,
    x_off: u32, weight_off: u32, w_stride: u32, x_channels: u32,
    has_bias: u32, bias_off: u32,
    out_off: u32, out_channels: u32, accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> weight: array<elem>;
@group(0) @binding(3) var<storage, read_write> bias: array<elem>;
@group(0) @binding(4) var<storage, read_write> out: array<elem>;

// weight[out channel r, k] with k = (c * kernel + ky) * kernel + kx.
fn load_x(r: u32, k: u32) -> f32 {
    return f32(weight[p.weight_off + r * p.w_stride + k]);
}

// The column load_w gathers for, and where its window starts: the sample's first element and
// the output pixel's (oy - pad, ox - pad). lib/tiled_matmul.wgsl stages one column per
// invocation through the whole k loop (W_COLUMNS_FASTEST), so the three divisions by the
// image's size run once per invocation instead of once per loaded element. Zero-initialised,
// so `column` holds col + 1 (0: none yet).
var<private> column: u32;
var<private> sample_at: u32;
var<private> window_y: i32;
var<private> window_x: i32;

// Input pixel (oy + ky - pad, ox + kx - pad) of channel c for output pixel col, 0 outside.
fn load_w(col: u32, k: u32) -> f32 {
    if (column != col + 1u) {
        let pixels = p.out_h * p.out_w;
        column = col + 1u;
        sample_at = p.x_off + col / pixels * p.x_channels * p.height * p.width;
        window_y = i32(col % pixels / p.out_w) - i32(p.pad);
        window_x = i32(col % p.out_w) - i32(p.pad);
    }
    let kk = KERNEL * KERNEL;
    let c = k / kk;
    let iy = window_y + i32(k % kk / KERNEL);
    let ix = window_x + i32(k % KERNEL);
    if (iy < 0 || ix < 0 || iy >= i32(p.height) || ix >= i32(p.width)) {
        return 0.0;
    }
    return f32(x[sample_at + (c * p.height + u32(iy)) * p.width + u32(ix)]);
}

fn store(r: u32, col: u32, acc: f32) {
    var v = acc;
    if (p.has_bias != 0u) {
        v += f32(bias[p.bias_off + r]);
    }
    let pixels = p.out_h * p.out_w;
    let at = p.out_off + (col / pixels * p.out_channels + r) * pixels + col % pixels;
    if (p.accumulate != 0u) {
        v += f32(out[at]);
    }
    out[at] = elem(v);
}
