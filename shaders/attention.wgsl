// Fused attention, flash style: out = softmax(q k^T * scale + bias) v per (sample, head) for
// heads of up to 128 dims, with an online softmax over blocks of BLOCK_KV keys, so no score
// matrix exists beyond one block of partial scores in workgroup memory.
//
// A workgroup owns BLOCK_Q query rows of one (sample, head); each row has 2 invocations (lanes),
// lane c holding the head's dims in the vec4 pieces c, c + 2, c + 4, ... (its half of the query,
// pre-scaled, and of the output accumulator in registers: PIECES vec4s each). Each block of keys
// and values is staged once in workgroup memory for all BLOCK_Q rows, in two phases that each
// stage one tile while computing from the other (2 barriers per block):
//   phase 1  the lanes' partial dot products with the staged keys go to `partial`; the block's
//            values are staged;
//   phase 2  each lane adds its partner's partials (the same sum in both lanes, so both keep the
//            same running max m and sum l) and the next block's keys are staged; then
//            m_new = max(m, max_j s_j), o = o e^(m - m_new) + sum_j e^(s_j - m_new) v_j,
//            l = l e^(m - m_new) + sum_j e^(s_j - m_new).
// Finally out = o / l. Params in the order src/backend/wgpu/lower/attention.rs pushes them.

alias elem = f32;

// Both redeclared by the lowering: the head's dims, and the keys per block (from the head dims,
// so that the tiles and `partial` fit in 16 KiB, WebGPU's default limit).
const HEAD_DIM: u32 = 128u;
const BLOCK_KV: u32 = 8u;

const BLOCK_Q: u32 = 64u;
const THREADS: u32 = 128u;
// vec4 pieces per lane, and per staged key (the head zero-padded to a multiple of 8 dims).
const PIECES: u32 = (HEAD_DIM + 7u) / 8u;
const KEY_PIECES: u32 = 2u * PIECES;
const PADDED: u32 = 4u * KEY_PIECES;

struct Params {
    q_len: u32, kv_len: u32,
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

// [BLOCK_KV][KEY_PIECES]: dims 4 c .. 4 c + 3 of key j of the block at j * KEY_PIECES + c.
var<workgroup> k_tile: array<vec4<f32>, BLOCK_KV * KEY_PIECES>;
var<workgroup> v_tile: array<vec4<f32>, BLOCK_KV * KEY_PIECES>;
// [BLOCK_KV][THREADS]: invocation li's partial dot product with key j.
var<workgroup> partial: array<f32, BLOCK_KV * THREADS>;

// Stages keys j0 .. j0 + BLOCK_KV of k (is_v false) or v of `head` of sample b into their tile:
// consecutive invocations on consecutive elements (element t of the tile is dim t % PADDED of
// key t / PADDED, divisions by a constant), zero beyond the head and beyond the last key.
fn stage(is_v: bool, li: u32, b: u32, head: u32, j0: u32) {
    for (var t = li; t < BLOCK_KV * PADDED; t += THREADS) {
        let j = j0 + t / PADDED;
        let d = t % PADDED;
        var x = 0.0;
        if (j < p.kv_len && d < HEAD_DIM) {
            let at = (b * p.kv_len + j) * p.kv_stride + head * HEAD_DIM + d;
            if (is_v) {
                x = f32(v[p.v_off + at]);
            } else {
                x = f32(k[p.k_off + at]);
            }
        }
        if (is_v) {
            v_tile[t / 4u][t % 4u] = x;
        } else {
            k_tile[t / 4u][t % 4u] = x;
        }
    }
}

// workgroup_id = (query tile, head, sample).
@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let head = wid.y;
    let b = wid.z;
    let n = wid.x * BLOCK_Q + li / 2u;
    let lane = li % 2u;
    let has_row = n < p.q_len;

    // This lane's half of the query row, pre-multiplied by the scale, and of the accumulator.
    var q_row: array<vec4<f32>, PIECES>;
    var o: array<vec4<f32>, PIECES>;
    if (has_row) {
        let at = p.q_off + (b * p.q_len + n) * p.q_stride + head * HEAD_DIM;
        for (var i = 0u; i < PIECES; i++) {
            let d = 4u * (lane + 2u * i);
            for (var e = 0u; e < 4u; e++) {
                if (d + e < HEAD_DIM) {
                    q_row[i][e] = f32(q[at + d + e]) * p.scale;
                }
            }
        }
    }
    // Running max (finite, so the first correction is exp(-huge) = 0, not NaN) and sum.
    var m = -3.0e38;
    var l = 0.0;
    stage(false, li, b, head, 0u);
    for (var j0 = 0u; j0 < p.kv_len; j0 += BLOCK_KV) {
        workgroupBarrier();
        // Phase 1: partial scores from the staged keys (and this lane's half of the bias terms:
        // even keys in lane 0, odd in lane 1); stage the values.
        for (var j = 0u; j < BLOCK_KV; j++) {
            var part = 0.0;
            for (var i = 0u; i < PIECES; i++) {
                part += dot(q_row[i], k_tile[j * KEY_PIECES + lane + 2u * i]);
            }
            if (p.has_bias != 0u && has_row && j % 2u == lane && j0 + j < p.kv_len) {
                part += f32(bias[p.bias_off + (head * p.q_len + n) * p.kv_len + j0 + j]);
            }
            partial[j * THREADS + li] = part;
        }
        stage(true, li, b, head, j0);
        workgroupBarrier();
        // Phase 2: the block's scores; stage the next block's keys; the online softmax.
        var s: array<f32, BLOCK_KV>;
        var block_max = -3.0e38;
        for (var j = 0u; j < BLOCK_KV; j++) {
            s[j] = -3.0e38;
            if (j0 + j < p.kv_len) {
                // In lane order, so both lanes of a row add the same two numbers alike.
                s[j] = partial[j * THREADS + li - lane] + partial[j * THREADS + li - lane + 1u];
                block_max = max(block_max, s[j]);
            }
        }
        if (j0 + BLOCK_KV < p.kv_len) {
            stage(false, li, b, head, j0 + BLOCK_KV);
        }
        let m_new = max(m, block_max);
        let correction = exp(m - m_new);
        l *= correction;
        for (var i = 0u; i < PIECES; i++) {
            o[i] *= correction;
        }
        for (var j = 0u; j < BLOCK_KV; j++) {
            // Keys beyond kv_len: exp(-3e38 - m_new) = 0 times staged zeros.
            let pj = exp(s[j] - m_new);
            l += pj;
            for (var i = 0u; i < PIECES; i++) {
                o[i] += pj * v_tile[j * KEY_PIECES + lane + 2u * i];
            }
        }
        m = m_new;
    }
    if (has_row) {
        let at = p.out_off + (b * p.q_len + n) * p.out_stride + head * HEAD_DIM;
        let inv = 1.0 / l;
        for (var i = 0u; i < PIECES; i++) {
            let d = 4u * (lane + 2u * i);
            for (var e = 0u; e < 4u; e++) {
                if (d + e < HEAD_DIM) {
                    out[at + d + e] = elem(o[i][e] * inv);
                }
            }
        }
    }
}
