// patchify: image [b, c, h, w] -> tokens [b, (h/p)(w/p), c p p] in the order of a flattened
// conv weight: out[b, hi * wp + wi, (c * p + i) * p + j] = x[b, c, hi * p + i, wi * p + j].
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
    let pp = p.psize * p.psize;
    let token_dim = p.channels * pp;
    let wp = p.width / p.psize;
    let tokens = p.height / p.psize * wp;
    let token = i / token_dim;
    let e = i % token_dim;
    let b = token / tokens;
    let hi = token % tokens / wp;
    let wi = token % wp;
    let c = e / pp;
    let y = hi * p.psize + e % pp / p.psize;
    let xo = wi * p.psize + e % p.psize;
    out[p.out_off + i] = x[p.x_off + ((b * p.channels + c) * p.height + y) * p.width + xo];
}
