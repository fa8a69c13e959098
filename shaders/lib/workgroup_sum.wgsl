// The sum of one f32 over a workgroup of BLOCK_THREADS invocations: each stores its value, then
// a tree in workgroup memory; every invocation gets the total. Call it from uniform control flow.

const BLOCK_THREADS: u32 = 256u;

var<workgroup> partial: array<f32, 256>;

fn workgroup_sum(li: u32, value: f32) -> f32 {
    partial[li] = value;
    workgroupBarrier();
    for (var stride = BLOCK_THREADS / 2u; stride > 0u; stride /= 2u) {
        if (li < stride) {
            partial[li] += partial[li + stride];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    // Everyone has read the total before the next call overwrites it.
    workgroupBarrier();
    return total;
}
