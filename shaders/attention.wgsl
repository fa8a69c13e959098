// Fused attention, flash style: out = softmax(q k^T * scale + bias) v per (sample, head),
// with an online softmax over tiles of BLOCK_KV keys, so no score matrix exists beyond one
// tile of partial scores in workgroup memory. Any head_dim: the head is cut into chunks of
// CHUNK_DIMS dims.
//
// A workgroup owns BLOCK_Q query rows of one (sample, head) and one chunk of the head's output
// dims (o0 .. o0 + CHUNK_DIMS); each row has LANES invocations, and lane c of a row holds the
// chunk's dims in the vec4 pieces c, c + LANES, ... (a query chunk and the output accumulator
// in registers: CHUNKS vec4s each, zero-padded to a multiple of 4). Per key tile:
//   scores   s_j = sum over the head's chunks of q_chunk . k_chunk_j: each chunk of the keys
//            is staged in workgroup memory and every invocation adds its partial dot products
//            into `partial` (with one chunk, head_dim <= CHUNK_DIMS, q is loaded once; with
//            more it is reloaded per chunk, and every output chunk recomputes the scores);
//   softmax  the lanes of a row add up their partials, so all LANES lanes keep the same
//            running max m and sum l: m_new = max(m, max_j s_j), o *= e^(m - m_new),
//            l = l e^(m - m_new) + sum_j e^(s_j - m_new);
//   o       += e^(s_j - m_new) v_j over this workgroup's output chunk of the staged values.
// Finally out = o / l.
// Params in the order src/backend/wgpu/lower/attention.rs pushes them.

alias elem = f32;

const BLOCK_Q: u32 = 16u;
const LANES: u32 = 4u;
const THREADS: u32 = 64u;
const BLOCK_KV: u32 = 16u;
// The lowering redeclares it: 128, or 64 where the adapter has under 20 KiB of workgroup memory,
// or a narrower head's width rounded up to a multiple of 4 * LANES (72 -> 80). The staged tiles
// take 2 * BLOCK_KV * CHUNK_DIMS * 4 bytes (at most 16 KiB, 8 with 64), `partial` 4 KiB.
const CHUNK_DIMS: u32 = 128u;
// vec4 pieces per lane.
const CHUNKS: u32 = CHUNK_DIMS / 4u / LANES;
// vec4 pieces per key in the staged tiles.
const KEY_CHUNKS: u32 = CHUNK_DIMS / 4u;

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

// [BLOCK_KV][KEY_CHUNKS]: dims c0 + 4 c .. c0 + 4 c + 3 of key j of the staged chunk at
// j * KEY_CHUNKS + c.
var<workgroup> k_tile: array<vec4<f32>, BLOCK_KV * KEY_CHUNKS>;
var<workgroup> v_tile: array<vec4<f32>, BLOCK_KV * KEY_CHUNKS>;
// [BLOCK_KV][THREADS]: invocation li's partial dot product with key j.
var<workgroup> partial: array<f32, BLOCK_KV * THREADS>;

// Dims d .. d + 3 of the query row starting at element `at` of q, zero beyond head_dim.
fn load_q(at: u32, d: u32) -> vec4<f32> {
    var piece = vec4<f32>();
    for (var e = 0u; e < 4u; e++) {
        if (d + e < p.head_dim) {
            piece[e] = f32(q[at + d + e]);
        }
    }
    return piece;
}

// Stages dims c0 .. c0 + dims of keys j0 .. j0 + tile of k (is_v false) or v into their tile,
// zero-padded to whole vec4s. (No index is divided: llvmpipe divides one lane at a time.)
fn stage(is_v: bool, li: u32, b: u32, head: u32, j0: u32, tile: u32, c0: u32, dims: u32) {
    let padded = (dims + 3u) / 4u * 4u;
    for (var j = 0u; j < tile; j++) {
        let row = (b * p.kv_len + j0 + j) * p.kv_stride + head * p.head_dim + c0;
        for (var d = li; d < padded; d += THREADS) {
            var x = 0.0;
            if (d < dims) {
                if (is_v) {
                    x = f32(v[p.v_off + row + d]);
                } else {
                    x = f32(k[p.k_off + row + d]);
                }
            }
            if (is_v) {
                v_tile[j * KEY_CHUNKS + d / 4u][d % 4u] = x;
            } else {
                k_tile[j * KEY_CHUNKS + d / 4u][d % 4u] = x;
            }
        }
    }
}

// workgroup_id = (query tile, head * chunks per head + output chunk, sample).
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let hd = p.head_dim;
    let head_chunks = (hd + CHUNK_DIMS - 1u) / CHUNK_DIMS;
    let head = wid.y / head_chunks;
    let o0 = wid.y % head_chunks * CHUNK_DIMS;
    let o_pieces = (min(CHUNK_DIMS, hd - o0) + 3u) / 4u;
    let b = wid.z;
    let n = wid.x * BLOCK_Q + li / LANES;
    let lane = li % LANES;
    let has_row = n < p.q_len;
    let q_at = p.q_off + (b * p.q_len + n) * p.q_stride + head * hd;

    // The query chunk being dotted, pre-multiplied by the scale, and the output accumulator.
    var q_row: array<vec4<f32>, CHUNKS>;
    var o: array<vec4<f32>, CHUNKS>;
    if (has_row && head_chunks == 1u) {
        for (var i = 0u; i < CHUNKS; i++) {
            q_row[i] = load_q(q_at, 4u * (lane + LANES * i)) * p.scale;
        }
    }
    // Running max (finite, so the first correction is exp(-huge) = 0, not NaN) and sum.
    var m = -3.0e38;
    var l = 0.0;
    for (var j0 = 0u; j0 < p.kv_len; j0 += BLOCK_KV) {
        let tile = min(BLOCK_KV, p.kv_len - j0);
        for (var c0 = 0u; c0 < hd; c0 += CHUNK_DIMS) {
            let pieces = (min(CHUNK_DIMS, hd - c0) + 3u) / 4u;
            if (has_row && head_chunks > 1u) {
                for (var i = 0u; i < CHUNKS; i++) {
                    q_row[i] = load_q(q_at, c0 + 4u * (lane + LANES * i)) * p.scale;
                }
            }
            workgroupBarrier();
            stage(false, li, b, head, j0, tile, c0, min(CHUNK_DIMS, hd - c0));
            if (c0 == 0u) {
                stage(true, li, b, head, j0, tile, o0, min(CHUNK_DIMS, hd - o0));
            }
            workgroupBarrier();
            for (var j = 0u; j < BLOCK_KV; j++) {
                var dot_part = 0.0;
                for (var i = 0u; i < CHUNKS; i++) {
                    let c = lane + LANES * i;
                    if (c < pieces && j < tile) {
                        dot_part += dot(q_row[i], k_tile[j * KEY_CHUNKS + c]);
                    }
                }
                if (c0 == 0u) {
                    partial[j * THREADS + li] = dot_part;
                } else {
                    partial[j * THREADS + li] += dot_part;
                }
            }
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
                    if (c < o_pieces) {
                        o[i] += pj * v_tile[j * KEY_CHUNKS + c];
                    }
                }
            }
        }
        m = m_new;
    }
    if (has_row) {
        let at = p.out_off + (b * p.q_len + n) * p.out_stride + head * hd + o0;
        let inv = 1.0 / l;
        for (var i = 0u; i < CHUNKS; i++) {
            let c = lane + LANES * i;
            for (var e = 0u; e < 4u; e++) {
                if (o0 + 4u * c + e < hd) {
                    out[at + 4u * c + e] = elem(o[i][e] * inv);
                }
            }
        }
    }
}
