// layernorm: out = LN(x) * gamma + beta over rows of dim (a block per row, block_len = dim),
// gamma/beta optional. On lib/block_norm.wgsl (after lib/flat_index.wgsl and
// lib/workgroup_sum.wgsl). Params in the order src/backend/wgpu/lower/norm.rs pushes them.

alias elem = f32;

struct Params {
    blocks: u32, block_len: u32,
    eps: f32,
    x_off: u32,
    has_gamma: u32, gamma_off: u32,
    has_beta: u32, beta_off: u32,
    out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> gamma: array<elem>;
@group(0) @binding(3) var<storage, read_write> beta: array<elem>;
@group(0) @binding(4) var<storage, read_write> out: array<elem>;

fn load_x(i: u32) -> f32 {
    return f32(x[p.x_off + i]);
}

fn store_normalized(row: u32, i: u32, y: f32) {
    var v = y;
    if (p.has_gamma != 0u) {
        v *= f32(gamma[p.gamma_off + i]);
    }
    if (p.has_beta != 0u) {
        v += f32(beta[p.beta_off + i]);
    }
    out[p.out_off + row * p.block_len + i] = elem(v);
}
