// gate_residual (DiT adaLN-Zero): x += gate_b * y over rows of dim, rows grouped `tokens` per
// sample b. One element per invocation (lib/per_element.wgsl). Params in the order
// src/backend/wgpu/lower/elementwise.rs pushes them.

alias elem = f32;

struct Params {
    len: u32, dim: u32, tokens: u32,
    x_off: u32, y_off: u32,
    gate_off: u32, gate_stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> y: array<elem>;
@group(0) @binding(3) var<storage, read_write> gate: array<elem>;

fn element(i: u32) {
    let b = i / p.dim / p.tokens;
    let g = f32(gate[p.gate_off + b * p.gate_stride + i % p.dim]);
    x[p.x_off + i] = elem(f32(x[p.x_off + i]) + g * f32(y[p.y_off + i]));
}
