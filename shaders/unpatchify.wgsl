// unpatchify: tokens -> image [b, c, h, w] in the official order, channels fastest within a
// patch: out[b, c, hi * p + i, wi * p + j] = x[b, hi * wp + wi, (i * p + j) * c_count + c].
// One output element per invocation (lib/per_element.wgsl). Params in the order
// src/backend/wgpu/lower/layout.rs pushes them.

alias elem = f32;

struct Params {
    len: u32, channels: u32, height: u32, width: u32, psize: u32,
    x_off: u32, out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> out: array<elem>;

fn element(i: u32) {
    let xo = i % p.width;
    let y = i / p.width % p.height;
    let c = i / (p.width * p.height) % p.channels;
    let b = i / (p.width * p.height * p.channels);
    let wp = p.width / p.psize;
    let token = (b * (p.height / p.psize) + y / p.psize) * wp + xo / p.psize;
    let e = (y % p.psize * p.psize + xo % p.psize) * p.channels + c;
    out[p.out_off + i] = x[p.x_off + token * p.channels * p.psize * p.psize + e];
}
