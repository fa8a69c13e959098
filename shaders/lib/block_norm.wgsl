// The skeleton of the row normalisations: one block of p.block_len contiguous values per
// workgroup of 256 invocations, p.blocks blocks in a flat run (after lib/flat_index.wgsl and
// lib/workgroup_sum.wgsl). The including shader defines Params with fields blocks, block_len,
// eps, bound as `p`; fn load_x(i: u32) -> f32, element i of its input counted from the first block; and
// fn store_normalized(block: u32, i: u32, y: f32), called with y = (x - mean) / sqrt(var + eps)
// (biased variance) for element i of each block.
// The statistics take two passes (the mean, then the squared deviations from it), each summed
// per invocation and then over the workgroup.

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let block = flat_group(wid, groups);
    // Surplus workgroups of a split run see an empty block (no early return before barriers).
    let len = select(0u, p.block_len, block < p.blocks);
    let first = block * p.block_len;
    var sum = 0.0;
    for (var i = li; i < len; i += BLOCK_THREADS) {
        sum += load_x(first + i);
    }
    let mean = workgroup_sum(li, sum) / f32(len);
    var squares = 0.0;
    for (var i = li; i < len; i += BLOCK_THREADS) {
        let d = load_x(first + i) - mean;
        squares += d * d;
    }
    let rstd = 1.0 / sqrt(workgroup_sum(li, squares) / f32(len) + p.eps);
    for (var i = li; i < len; i += BLOCK_THREADS) {
        store_normalized(block, i, (load_x(first + i) - mean) * rstd);
    }
}
