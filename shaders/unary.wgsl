// unary: out = act(x) elementwise (lib/activation.wgsl); out may be x itself. One element
// per invocation (lib/per_element.wgsl). Params in the order
// src/backend/wgpu/lower/elementwise.rs pushes them.

alias elem = f32;

struct Params {
    len: u32, act: u32,
    x_off: u32, out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> out: array<elem>;

fn element(i: u32) {
    out[p.out_off + i] = elem(activate(p.act, f32(x[p.x_off + i])));
}
