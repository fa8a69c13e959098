// The entry point of the shaders that compute one output element per invocation. The
// including shader defines Params with a field `len` (the element count), bound as `p`, and
// fn element(i: u32), called once for every i < len. Workgroups of 256 invocations
// (FLAT_THREADS in src/backend/wgpu/dispatch.rs) in a flat run (lib/flat_index.wgsl).

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_group(wid, groups) * 256u + li;
    if (i < p.len) {
        element(i);
    }
}
