// upsample2x: nearest x2, [planes, h, w] -> [planes, 2h, 2w]. Output row R of all planes
// (R = plane * 2h + y) reads input row R / 2 (= plane * h + y / 2). One output element per
// invocation (lib/per_element.wgsl). Params in the order src/backend/wgpu/lower/layout.rs
// pushes them.

alias elem = f32;

struct Params {
    len: u32, width: u32,
    x_off: u32, out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> out: array<elem>;

fn element(i: u32) {
    let out_row = i / (2u * p.width);
    let col = i % (2u * p.width);
    out[p.out_off + i] = x[p.x_off + out_row / 2u * p.width + col / 2u];
}
