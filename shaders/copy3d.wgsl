// copy3d: dst[i*t0 + j*t1 + k*t2] = src[i*s0 + j*s1 + k*s2] for (i, j, k) < (d0, d1, d2),
// converting src_elem to dst_elem (f32 <-> f16, or u32 to u32 bit for bit). One element per
// invocation (lib/per_element.wgsl). Params in the order src/backend/wgpu/lower/layout.rs
// pushes them.

alias src_elem = f32;
alias dst_elem = f32;

struct Params {
    len: u32, d1: u32, d2: u32,
    src_off: u32, s0: u32, s1: u32, s2: u32,
    dst_off: u32, t0: u32, t1: u32, t2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> src: array<src_elem>;
@group(0) @binding(2) var<storage, read_write> dst: array<dst_elem>;

fn element(e: u32) {
    let k = e % p.d2;
    let j = e / p.d2 % p.d1;
    let i = e / (p.d1 * p.d2);
    dst[p.dst_off + i * p.t0 + j * p.t1 + k * p.t2] = dst_elem(src[p.src_off + i * p.s0 + j * p.s1 + k * p.s2]);
}
