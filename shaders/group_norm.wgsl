// group_norm, pass 2 of 2: each workgroup merges the statistics of every slice of its block
// (written by group_norm_stats.wgsl) into the block's mean and biased variance, then normalises
// its own slice (lib/group_slices.wgsl): (x - mean) / sqrt(var + eps) * gamma[c] + beta[c], then
// SiLU if asked. A block is channels / groups contiguous channels of `spatial` values. A
// dispatch may normalise a run of blocks starting at block `first` of the op (x and out bound
// from there; an image beyond the binding limit). Params in the order
// src/backend/wgpu/lower/norm.rs pushes them.

alias elem = f32;

const THREADS: u32 = 256u;

struct Params {
    blocks: u32, block_len: u32, slices: u32, slice_len: u32,
    eps: f32,
    groups: u32, spatial: u32, silu: u32, first: u32,
    x_off: u32, stats_off: u32, gamma_off: u32, beta_off: u32, out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> gamma: array<elem>;
@group(0) @binding(4) var<storage, read_write> beta: array<elem>;
@group(0) @binding(5) var<storage, read_write> out: array<elem>;

// (count, mean, M2) of a set of values; the empty set is all zeros.
var<workgroup> merged: array<vec3<f32>, THREADS>;

// The statistics of the union of two disjoint sets (Chan, Golub and LeVeque's pairwise update):
// n = na + nb, mean = mean_a + delta nb / n, M2 = M2_a + M2_b + delta^2 na nb / n, with
// delta = mean_b - mean_a; free of the cancellation of sum-of-squares formulas.
fn chan(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
    let n = a.x + b.x;
    if (n == 0.0) {
        return a;
    }
    let delta = b.y - a.y;
    let wb = b.x / n;
    return vec3(n, a.y + delta * wb, a.z + b.z + delta * delta * a.x * wb);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let s = slice_of(wid, groups);
    // Each invocation merges the slices li, li + 256, ... of the block, then the workgroup
    // merges those as a tree (surplus workgroups merge nothing: no early return before barriers).
    var own = vec3<f32>();
    for (var j = li; s.len > 0u && j < p.slices; j += THREADS) {
        let at = p.stats_off + 2u * (s.block * p.slices + j);
        own = chan(own, vec3(slice_count(j), stats[at], stats[at + 1u]));
    }
    merged[li] = own;
    workgroupBarrier();
    for (var stride = THREADS / 2u; stride > 0u; stride /= 2u) {
        if (li < stride) {
            merged[li] = chan(merged[li], merged[li + stride]);
        }
        workgroupBarrier();
    }
    let block = merged[0];
    let mean = block.y;
    let rstd = 1.0 / sqrt(block.z / max(block.x, 1.0) + p.eps);
    // The block's first channel; the value's own is e / spatial channels on.
    let first_channel = (p.first + s.block) % p.groups * (p.block_len / p.spatial);
    for (var i = li; i < s.len; i += THREADS) {
        let e = s.index * p.slice_len + i;
        let c = first_channel + e / p.spatial;
        var v = (f32(x[p.x_off + s.first + i]) - mean) * rstd * f32(gamma[p.gamma_off + c]) + f32(beta[p.beta_off + c]);
        if (p.silu != 0u) {
            v = silu(v);
        }
        out[p.out_off + s.first + i] = elem(v);
    }
}
