// timestep_embedding: out[b] = [cos(t_b f_i) for i < half, sin(t_b f_i) for i < half, 0 if dim
// is odd]. The angle t f reaches ~1e3 rad, where plain f32 loses ~1e-4; here it stays within
// ~3e-7 rad of the exact one:
// - the host supplies each f_i (computed in f64) as f_hi + f_lo, f_hi with 12 significant bits;
// - t = ti + tf with ti = floor(t); for ti < 4096, ti * f_hi is exact in f32 (12 + 12 bits) and
//   is reduced modulo 2 pi exactly (2 pi = TWO_PI_HI + TWO_PI_MID, TWO_PI_HI with 8 bits);
// - the small terms ti f_lo + tf f are added after the reduction;
// - sin and cos come from polynomials on [-pi/4, pi/4] after an exact quadrant reduction,
//   not from the builtins, whose accuracy WGSL leaves loose.
// One output element per invocation (lib/per_element.wgsl). Params in the order
// src/backend/wgpu/lower/embedding.rs pushes them.

alias elem = f32;

const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_MID: f32 = 0.0019353071795864769;
const PI_2_HI: f32 = 1.5703125;
const PI_2_LO: f32 = 0.00048382679489661923;

struct Params {
    len: u32, dim: u32, half: u32,
    t_off: u32, freqs_off: u32, out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> t: array<f32>;
// f_i as the pair (f_hi, f_lo) at 2 i, 2 i + 1.
@group(0) @binding(2) var<storage, read_write> freqs: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<elem>;

// (sin y, cos y) for |y| <= pi/4 (Cephes sinf/cosf polynomials).
fn sincos_reduced(y: f32) -> vec2<f32> {
    let z = y * y;
    let s = y + y * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
    let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
    return vec2<f32>(s, c);
}

// (sin r, cos r) for |r| below ~5.
fn sincos(r: f32) -> vec2<f32> {
    let j = round(r / (PI_2_HI + PI_2_LO));
    let y = (r - j * PI_2_HI) - j * PI_2_LO;
    let sc = sincos_reduced(y);
    switch (i32(j) % 4 + 4) % 4 {
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
    let f_hi = freqs[p.freqs_off + 2u * i];
    let f_lo = freqs[p.freqs_off + 2u * i + 1u];
    let tb = t[p.t_off + e / p.dim];
    let ti = floor(tb);
    let tf = tb - ti;
    let a = ti * f_hi;
    let k = round(a / (TWO_PI_HI + TWO_PI_MID));
    let r = (a - k * TWO_PI_HI) - k * TWO_PI_MID + (ti * f_lo + tf * f_hi + tf * f_lo);
    let sc = sincos(r);
    out[p.out_off + e] = elem(select(sc.x, sc.y, c < p.half));
}
