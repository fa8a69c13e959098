// timestep_embedding: out[b] = [cos(t_b f_i) for i < half, sin(t_b f_i) for i < half, 0 if dim
// is odd]. The angle t f reaches ~1e3 rad, where plain f32 loses ~1e-4; here it stays within
// ~4e-7 rad of the exact one, by a reduction in turns (angle / 2 pi) in which every step is
// exact or one rounding of a small value, so no result rests on the order of additions that
// cancel (which fast-math compilers, Metal's by default, may regroup):
// - the host supplies each g_i = f_i / (2 pi) (computed in f64) as g_hi + g_lo, g_hi with 12
//   significant bits;
// - t = ti + tf with ti = floor(t); for ti < 4096, ti * g_hi is exact in f32 (12 + 12 bits), so
//   its fraction (the builtin fract) is exact, and the small terms ti g_lo + tf g are added to
//   it: u, the turns modulo 1, is then moved to [-1/2, 1/2] and the quarter turn q nearest
//   taken off, both exactly;
// - what is left, at most 1/8 turn, becomes radians in one product, and sin and cos come from
//   polynomials on [-pi/4, pi/4] rotated by q quarter turns, not from the builtins, whose
//   accuracy WGSL leaves loose.
// One output element per invocation (lib/per_element.wgsl). Params in the order
// src/backend/wgpu/lower/embedding.rs pushes them.

alias elem = f32;

const TWO_PI: f32 = 6.283185307179586;

struct Params {
    len: u32, dim: u32, half: u32,
    t_off: u32, freqs_off: u32, out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> t: array<f32>;
// g_i = f_i / (2 pi) as the pair (g_hi, g_lo) at 2 i, 2 i + 1.
@group(0) @binding(2) var<storage, read_write> freqs: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<elem>;

// (sin y, cos y) for |y| <= pi/4 (Cephes sinf/cosf polynomials).
fn sincos_reduced(y: f32) -> vec2<f32> {
    let z = y * y;
    let s = y + y * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
    let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
    return vec2<f32>(s, c);
}

// (sin, cos) of `turns` (|turns| <= 1/8) plus q quarter turns.
fn sincos_quadrant(turns: f32, q: f32) -> vec2<f32> {
    let sc = sincos_reduced(turns * TWO_PI);
    switch (i32(q) % 4 + 4) % 4 {
        case 1: { return vec2<f32>(sc.y, -sc.x); }
        case 2: { return -sc; }
        case 3: { return vec2<f32>(-sc.y, sc.x); }
        default: { return sc; }
    }
}

fn element(e: u32) {
    let c = e % p.dim;
    if (c >= 2u * p.half) {
        out[p.out_off + e] = elem(0.0);
        return;
    }
    let i = c % p.half;
    let g_hi = freqs[p.freqs_off + 2u * i];
    let g_lo = freqs[p.freqs_off + 2u * i + 1u];
    let tb = t[p.t_off + e / p.dim];
    let ti = floor(tb);
    let tf = tb - ti;
    let u0 = fract(ti * g_hi) + (ti * g_lo + tf * g_hi + tf * g_lo);
    let u = u0 - round(u0);
    let q = round(4.0 * u);
    let sc = sincos_quadrant(u - 0.25 * q, q);
    out[p.out_off + e] = elem(select(sc.x, sc.y, c < p.half));
}
