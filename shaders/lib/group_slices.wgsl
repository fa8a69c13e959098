// The slices of group_norm's two passes (group_norm_stats.wgsl, group_norm.wgsl; after
// lib/flat_index.wgsl): each of p.blocks (sample, group) blocks of p.block_len contiguous values
// is cut into p.slices slices of p.slice_len values, the last one shorter where p.slice_len does
// not divide p.block_len; one workgroup per slice, in a flat run, slices of a block together.

struct Slice {
    block: u32,
    // The slice's index within its block.
    index: u32,
    // Its first value counted from the first block, and how many it has (0 for the surplus
    // workgroups of a split run).
    first: u32,
    len: u32,
}

fn slice_of(wid: vec3<u32>, groups: vec3<u32>) -> Slice {
    let w = flat_group(wid, groups);
    let block = w / p.slices;
    let index = w % p.slices;
    let start = index * p.slice_len;
    let len = select(0u, min(p.slice_len, p.block_len - start), block < p.blocks);
    return Slice(block, index, block * p.block_len + start, len);
}

// The values of slice `index` of a block: all but the last have p.slice_len.
fn slice_count(index: u32) -> f32 {
    return f32(min(p.slice_len, p.block_len - index * p.slice_len));
}
