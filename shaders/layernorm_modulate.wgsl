// layernorm_modulate (DiT adaLN): out = LN(x) * (1 + scale_b) + shift_b over rows of dim (a
// block per row, block_len = dim), rows grouped `tokens` per sample b. On
// lib/block_norm.wgsl (after lib/flat_index.wgsl and lib/workgroup_sum.wgsl). Params in the
// order src/backend/wgpu/lower/norm.rs pushes them.

alias elem = f32;

struct Params {
    blocks: u32, block_len: u32,
    eps: f32,
    tokens: u32,
    x_off: u32,
    shift_off: u32, shift_stride: u32,
    scale_off: u32, scale_stride: u32,
    out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> shift: array<elem>;
@group(0) @binding(3) var<storage, read_write> scale: array<elem>;
@group(0) @binding(4) var<storage, read_write> out: array<elem>;

fn load_x(i: u32) -> f32 {
    return f32(x[p.x_off + i]);
}

fn store_normalized(row: u32, i: u32, y: f32) {
    let b = row / p.tokens;
    let sc = f32(scale[p.scale_off + b * p.scale_stride + i]);
    let sh = f32(shift[p.shift_off + b * p.shift_stride + i]);
    out[p.out_off + row * p.block_len + i] = elem(y * (1.0 + sc) + sh);
}
