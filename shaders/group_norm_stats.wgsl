// group_norm, pass 1 of 2: the statistics of each slice (lib/group_slices.wgsl) of each
// (sample, group) block, so that many workgroups share a block (the SD VAE has one block per
// group and sample: 32 per image). A workgroup writes its slice's mean and M2 (the sum of
// squared deviations from that mean; two passes over the slice, each summed over the workgroup)
// to stats[2 w], stats[2 w + 1], w its place in the run; group_norm.wgsl merges a block's
// slices. Params in the order src/backend/wgpu/lower/norm.rs pushes them.

alias elem = f32;

struct Params {
    blocks: u32, block_len: u32, slices: u32, slice_len: u32,
    x_off: u32, stats_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let s = slice_of(wid, groups);
    var sum = 0.0;
    for (var i = li; i < s.len; i += BLOCK_THREADS) {
        sum += f32(x[p.x_off + s.first + i]);
    }
    let mean = workgroup_sum(li, sum) / f32(max(s.len, 1u));
    var squares = 0.0;
    for (var i = li; i < s.len; i += BLOCK_THREADS) {
        let d = f32(x[p.x_off + s.first + i]) - mean;
        squares += d * d;
    }
    let m2 = workgroup_sum(li, squares);
    if (li == 0u && s.len > 0u) {
        let at = p.stats_off + 2u * (s.block * p.slices + s.index);
        stats[at] = mean;
        stats[at + 1u] = m2;
    }
}
