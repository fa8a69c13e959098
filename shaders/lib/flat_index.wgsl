// Flat dispatches: a run of workgroups too long for one dimension is split over x and y
// (`Grid::counts` in src/backend/wgpu/dispatch.rs); this is a workgroup's place in the run.

fn flat_group(wid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return wid.y * groups.x + wid.x;
}
