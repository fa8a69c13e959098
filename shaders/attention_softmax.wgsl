// Attention for heads wider than the fused shader's chunk, 2 of 3
// (src/backend/wgpu/lower/wide_attention.rs): each of p.rows rows of p.n scores (f32 scratch)
// replaced by its softmax, one workgroup per row (lib/flat_index.wgsl). Each invocation keeps a
// running max m and sum s = sum e^(x - m) of its strided share, the pairs merge as a tree
// (m = max(m1, m2), s = s1 e^(m1 - m) + s2 e^(m2 - m)), then every score becomes e^(x - m) / s.

const THREADS: u32 = 256u;
// The running max before any score: the lowest finite f32, so that e^(m - m_new) is 0, not NaN.
const LOWEST: f32 = -3.40282347e38;

struct Params {
    rows: u32, n: u32,
    scores_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> scores: array<f32>;

// (max, sum of e^(x - max)) of a share of a row.
var<workgroup> partial: array<vec2<f32>, THREADS>;

fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let m = max(a.x, b.x);
    return vec2(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = flat_group(wid, groups);
    // Surplus workgroups of a split run see an empty row (no early return before barriers).
    let len = select(0u, p.n, row < p.rows);
    let first = p.scores_off + row * p.n;
    var own = vec2(LOWEST, 0.0);
    for (var j = li; j < len; j += THREADS) {
        own = merge(own, vec2(scores[first + j], 1.0));
    }
    partial[li] = own;
    workgroupBarrier();
    for (var stride = THREADS / 2u; stride > 0u; stride /= 2u) {
        if (li < stride) {
            partial[li] = merge(partial[li], partial[li + stride]);
        }
        workgroupBarrier();
    }
    let total = partial[0];
    for (var j = li; j < len; j += THREADS) {
        scores[first + j] = exp(scores[first + j] - total.x) / total.y;
    }
}
