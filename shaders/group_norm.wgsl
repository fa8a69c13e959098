// group_norm: normalise each (sample, group) block of channels / groups contiguous channels of
// `spatial` values (block_len = channels / groups * spatial), then * gamma[c] + beta[c], then
// SiLU if asked. On lib/block_norm.wgsl (after lib/flat_index.wgsl and lib/activation.wgsl).
// A dispatch may normalise a run of blocks starting at block `first` of the op (x and out bound
// from there; an image beyond the binding limit). Params in the order
// src/backend/wgpu/lower/norm.rs pushes them.

alias elem = f32;

struct Params {
    blocks: u32, block_len: u32,
    eps: f32,
    groups: u32, spatial: u32, silu: u32, first: u32,
    x_off: u32, gamma_off: u32, beta_off: u32, out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> gamma: array<elem>;
@group(0) @binding(3) var<storage, read_write> beta: array<elem>;
@group(0) @binding(4) var<storage, read_write> out: array<elem>;

fn load_x(i: u32) -> f32 {
    return f32(x[p.x_off + i]);
}

fn store_normalized(block: u32, i: u32, y: f32) {
    let per_group = p.block_len / p.spatial;
    let c = (p.first + block) % p.groups * per_group + i / p.spatial;
    var v = y * f32(gamma[p.gamma_off + c]) + f32(beta[p.beta_off + c]);
    if (p.silu != 0u) {
        v = silu(v);
    }
    out[p.out_off + block * p.block_len + i] = elem(v);
}
