// add: out[i] = a[i] + b[i % b_len] (b repeats over a). out may be a itself: each element is
// read before it is written, by the same invocation. One element per invocation
// (lib/per_element.wgsl). Params in the order src/backend/wgpu/lower/elementwise.rs pushes them.

alias elem = f32;

struct Params {
    len: u32, b_len: u32,
    a_off: u32, b_off: u32, out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<elem>;
@group(0) @binding(2) var<storage, read_write> b: array<elem>;
@group(0) @binding(3) var<storage, read_write> out: array<elem>;

fn element(i: u32) {
    out[p.out_off + i] = elem(f32(a[p.a_off + i]) + f32(b[p.b_off + i % p.b_len]));
}
