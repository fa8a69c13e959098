// Fused attention, flash style: out = softmax(q k^T * scale + bias) v per (sample, head),
// with an online softmax over tiles of BLOCK_KV keys, so no score matrix exists beyond one
// tile of partial scores in workgroup memory.
//
// A workgroup owns BLOCK_Q query rows of one (sample, head); each row has LANES invocations,
// and lane c of a row holds the head's dims in the vec4 chunks c, c + LANES, ... (q and the
// output accumulator in registers: CHUNKS vec4s each, head_dim <= 128, zero-padded to a
// multiple of 4). Per tile: the keys and values are staged in workgroup memory; every
// invocation writes its partial dot products, and the lanes of a row add them up, so all
// LANES lanes of a row keep the same running max and sum.
// Params in the order src/backend/wgpu/lower/attention.rs pushes them.

alias elem = f32;

const BLOCK_Q: u32 = 16u;
const LANES: u32 = 4u;
const THREADS: u32 = 64u;
const BLOCK_KV: u32 = 16u;
// vec4 chunks per lane: 128 / 4 / LANES.
const CHUNKS: u32 = 8u;
// vec4 chunks per key in the staged tiles: 128 / 4.
const KEY_CHUNKS: u32 = 32u;

struct Params {
    q_len: u32, kv_len: u32, head_dim: u32,
    scale: f32,
    q_off: u32, q_stride: u32,
    k_off: u32, v_off: u32, kv_stride: u32,
    has_bias: u32, bias_off: u32,
    out_off: u32, out_stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> q: array<elem>;
@group(0) @binding(2) var<storage, read_write> k: array<elem>;
@group(0) @binding(3) var<storage, read_write> v: array<elem>;
@group(0) @binding(4) var<storage, read_write> bias: array<elem>;
@group(0) @binding(5) var<storage, read_write> out: array<elem>;

// [BLOCK_KV][KEY_CHUNKS]: dims 4 c .. 4 c + 3 of key j at j * KEY_CHUNKS + c.
var<workgroup> k_tile: array<vec4<f32>, 512>;
var<workgroup> v_tile: array<vec4<f32>, 512>;
// [BLOCK_KV][THREADS]: invocation li's partial dot product with key j.
var<workgroup> partial: array<f32, 1024>;

// Dims 4 c .. 4 c + 3 of the query row starting at element `at` of q, zero beyond head_dim.
fn load_q(at: u32, c: u32) -> vec4<f32> {
    var chunk = vec4<f32>();
    for (var e = 0u; e < 4u; e++) {
        if (4u * c + e < p.head_dim) {
            chunk[e] = f32(q[at + 4u * c + e]);
        }
    }
    return chunk;
}

// workgroup_id = (query tile, head, sample).
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let hd = p.head_dim;
    let head = wid.y;
    let b = wid.z;
    let n = wid.x * BLOCK_Q + li / LANES;
    let lane = li % LANES;
    let has_row = n < p.q_len;
    let chunks = (hd + 3u) / 4u;

    // This row's query chunks, pre-multiplied by the scale, and the output accumulator.
    var q_row: array<vec4<f32>, CHUNKS>;
    var o: array<vec4<f32>, CHUNKS>;
    if (has_row) {
        let at = p.q_off + (b * p.q_len + n) * p.q_stride + head * hd;
        for (var i = 0u; i < CHUNKS; i++) {
            q_row[i] = load_q(at, lane + LANES * i) * p.scale;
        }
    }
    // Running max (finite, so the first correction is exp(-huge) = 0, not NaN) and sum.
    var m = -3.0e38;
    var l = 0.0;
    for (var j0 = 0u; j0 < p.kv_len; j0 += BLOCK_KV) {
        let tile = min(BLOCK_KV, p.kv_len - j0);
        workgroupBarrier();
        // The head's dims, zero-padded to whole chunks.
        for (var e = li; e < tile * chunks * 4u; e += THREADS) {
            let j = e / (chunks * 4u);
            let d = e % (chunks * 4u);
            var kv = vec2<f32>();
            if (d < hd) {
                let at = (b * p.kv_len + j0 + j) * p.kv_stride + head * hd + d;
                kv = vec2<f32>(f32(k[p.k_off + at]), f32(v[p.v_off + at]));
            }
            k_tile[j * KEY_CHUNKS + d / 4u][d % 4u] = kv.x;
            v_tile[j * KEY_CHUNKS + d / 4u][d % 4u] = kv.y;
        }
        workgroupBarrier();
        for (var j = 0u; j < BLOCK_KV; j++) {
            var dot_part = 0.0;
            for (var i = 0u; i < CHUNKS; i++) {
                let c = lane + LANES * i;
                if (c < chunks && j < tile) {
                    dot_part += dot(q_row[i], k_tile[j * KEY_CHUNKS + c]);
                }
            }
            partial[j * THREADS + li] = dot_part;
        }
        workgroupBarrier();
        // The tile's scores of this row (the same in every lane of the row).
        var s: array<f32, BLOCK_KV>;
        var tile_max = -3.0e38;
        let first_lane = li - lane;
        for (var j = 0u; j < BLOCK_KV; j++) {
            if (j < tile) {
                let at = j * THREADS + first_lane;
                var score = partial[at] + partial[at + 1u] + partial[at + 2u] + partial[at + 3u];
                if (p.has_bias != 0u && has_row) {
                    score += f32(bias[p.bias_off + (head * p.q_len + n) * p.kv_len + j0 + j]);
                }
                s[j] = score;
                tile_max = max(tile_max, score);
            }
        }
        // Rescale what was accumulated against the old max to the new one.
        let m_new = max(m, tile_max);
        let correction = exp(m - m_new);
        l *= correction;
        for (var i = 0u; i < CHUNKS; i++) {
            o[i] *= correction;
        }
        for (var j = 0u; j < BLOCK_KV; j++) {
            if (j < tile) {
                let pj = exp(s[j] - m_new);
                l += pj;
                for (var i = 0u; i < CHUNKS; i++) {
                    let c = lane + LANES * i;
                    if (c < chunks) {
                        o[i] += pj * v_tile[j * KEY_CHUNKS + c];
                    }
                }
            }
        }
        m = m_new;
    }
    if (has_row) {
        let at = p.out_off + (b * p.q_len + n) * p.out_stride + head * hd;
        let inv = 1.0 / l;
        for (var i = 0u; i < CHUNKS; i++) {
            let c = lane + LANES * i;
            for (var e = 0u; e < 4u; e++) {
                if (4u * c + e < hd) {
                    out[at + 4u * c + e] = elem(o[i][e] * inv);
                }
            }
        }
    }
}
