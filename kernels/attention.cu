// attention on tensor cores (FlashAttention-2 scheme): out = softmax(q k^T * scale + bias) v
// per (sample, head), for f16/bf16 and head dims D in {64, 72, 96, 128}; layouts as in
// src/backend/ops.rs `Attention`. attention_fallback.cu covers everything else.
//
// A block of WARPS warps owns BLOCK_Q = 16 WARPS query rows of one (sample, head); warp w owns
// rows 16 w .. 16 w + 15, one m16 tile, whose Q fragments stay in registers for the whole
// kernel. K and V pass through shared memory BLOCK_KV keys at a time. Per tile:
//   S = Q K^T          mma m16n8k16 over D (plus one m16n8k8 step when D % 16 == 8, so 72
//                      needs no padding to 80 or 96), f32 accumulation;
//   online softmax     in base 2: x = S scale log2(e) + bias log2(e), keys >= kv_len -> -inf;
//                      m_new = max(m, max_j x_j), O *= 2^(m - m_new), l = l 2^(m - m_new) + sum_j p_j
//                      with p_j = 2^(x_j - m_new);
//   O += P V           P (rounded to the storage type) reuses the S accumulator registers as
//                      the A operand; V fragments are read from shared memory.
// Finally out = O / l. Fragment layouts (PTX ISA, mma.m16n8k16 / m16n8k8 with .f16/.bf16), for
// lane = 4 g + t: A a0 = (row g, cols 2t, 2t+1), a1 = row g + 8, a2 = cols + 8, a3 = both;
// B b0 = (k rows 2t, 2t+1, col g), b1 = k rows + 8; C c0, c1 = (row g, cols 2t, 2t+1),
// c2, c3 = row g + 8.
//
// Host preconditions (src/backend/cuda/encode/attention.rs): q and out 4-byte aligned with even
// strides (pairs are moved as one 32-bit word), k and v 16-byte aligned with strides a multiple
// of 8 elements (rows are loaded 16 bytes at a time).
// Grid (ceil(q_len / BLOCK_Q), heads, batch), 32 WARPS threads.
#include "common.cuh"

#define WARPS 4
#define BLOCK_Q (16 * WARPS)
#define BLOCK_KV 64
#define LOG2E 1.4426950408889634f

struct alignas(16) Vec16 {
    u32 w[4];
};

// The mma and pack instructions of one 16-bit storage type (kernels/ptx_ops.cuh).
template <typename T> struct Mma;

#define MMA_FOR(T)                                                                                     \
    template <> struct Mma<T> {                                                                        \
        static __device__ __forceinline__ void k16(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) { \
            mma_m16n8k16_##T(c, a, b0, b1);                                                            \
        }                                                                                              \
        static __device__ __forceinline__ void k8(float (&c)[4], u32 a0, u32 a1, u32 b0) {             \
            mma_m16n8k8_##T(c, a0, a1, b0);                                                            \
        }                                                                                              \
        /* Two f32 as one word: lo in bits 0..15 (the lower column), hi in bits 16..31. */             \
        static __device__ __forceinline__ u32 pack(float lo, float hi) { return cvt_rn_##T##x2_f32(lo, hi); } \
    };
MMA_FOR(f16)
MMA_FOR(bf16)

template <typename T, int D>
__device__ void attention_mma(const T* q, const T* k, const T* v, const T* bias, T* out, u64 q_len, u64 kv_len,
                              u64 q_stride, u64 kv_stride, u64 out_stride, float scale) {
    constexpr int KSTEPS = D / 16;          // k16 steps over the head dim
    constexpr bool TAIL8 = D % 16 == 8;     // one more k8 step (D = 72)
    constexpr int DTILES = D / 8;           // n8 tiles of the output row
    constexpr int STILES = BLOCK_KV / 8;    // n8 tiles of a score row
    // Shared row pitch in elements: 8 or 16 of padding, so that PITCH / 8 is odd. K fragments
    // are 32-bit words at rows g, column 2t (bank g PITCH / 2 + t), V fragments 16-bit values at
    // rows 2t, column g (bank t PITCH + g / 2), for g < 8, t < 4 (mod 32 banks): both are
    // conflict-free exactly when PITCH / 8 is odd. D + 8 is that for 64, 96 and 128 (72, 104,
    // 136); for 72 it would be 80, a 2-way conflict on every K and V load, so 72 takes 88.
    constexpr int PITCH = D / 8 % 2 == 0 ? D + 8 : D + 16;
    constexpr int VECS = D / 8;             // 16-byte vectors per K/V row
    __shared__ Vec16 k_tile[BLOCK_KV * PITCH / 8];
    __shared__ Vec16 v_tile[BLOCK_KV * PITCH / 8];
    const u16* ks = (const u16*)k_tile;
    const u16* vs = (const u16*)v_tile;

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const u64 h = blockIdx.y, b = blockIdx.z;
    const u64 col0 = h * D;
    // The two query rows this thread holds fragments of: g and g + 8 of the warp's tile.
    const u64 row[2] = {(u64)blockIdx.x * BLOCK_Q + warp * 16 + g, (u64)blockIdx.x * BLOCK_Q + warp * 16 + g + 8};

    // Q fragments (A operand of S = Q K^T): elements (row r, cols c, c + 1) as one word; rows
    // beyond q_len are zero (their scores are finite and never stored).
    const u16* q16 = (const u16*)q;
    auto q_pair = [&](int r, int c) -> u32 {
        return row[r] < q_len ? *(const u32*)(q16 + (b * q_len + row[r]) * q_stride + col0 + c) : 0u;
    };
    u32 qa[KSTEPS][4];
#pragma unroll
    for (int s = 0; s < KSTEPS; ++s) {
        qa[s][0] = q_pair(0, 16 * s + 2 * t);
        qa[s][1] = q_pair(1, 16 * s + 2 * t);
        qa[s][2] = q_pair(0, 16 * s + 8 + 2 * t);
        qa[s][3] = q_pair(1, 16 * s + 8 + 2 * t);
    }
    u32 qt[2] = {0u, 0u};
    if (TAIL8) {
        qt[0] = q_pair(0, 16 * KSTEPS + 2 * t);
        qt[1] = q_pair(1, 16 * KSTEPS + 2 * t);
    }

    float o[DTILES][4];
#pragma unroll
    for (int d = 0; d < DTILES; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const float scale_log2 = scale * LOG2E;

    for (u64 kv0 = 0; kv0 < kv_len; kv0 += BLOCK_KV) {
        __syncthreads();  // every warp is done with the previous tile
        for (int e = threadIdx.x; e < BLOCK_KV * VECS; e += 32 * WARPS) {
            const int r = e / VECS, c = e % VECS * 8;
            const u64 key = kv0 + r;
            Vec16 kv = {{0u, 0u, 0u, 0u}}, vv = {{0u, 0u, 0u, 0u}};  // keys past the end: zeros, never NaN
            if (key < kv_len) {
                const u64 at = (b * kv_len + key) * kv_stride + col0 + c;
                kv = *(const Vec16*)((const u16*)k + at);
                vv = *(const Vec16*)((const u16*)v + at);
            }
            k_tile[(r * PITCH + c) / 8] = kv;
            v_tile[(r * PITCH + c) / 8] = vv;
        }
        __syncthreads();

        // S = Q K^T: B(k = dim, n = key) = K[key][dim], so b0 is dims 2t, 2t + 1 of key g.
        float s[STILES][4];
#pragma unroll
        for (int n = 0; n < STILES; ++n) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
            const u16* kr = ks + (8 * n + g) * PITCH + 2 * t;
#pragma unroll
            for (int st = 0; st < KSTEPS; ++st)
                Mma<T>::k16(s[n], qa[st], *(const u32*)(kr + 16 * st), *(const u32*)(kr + 16 * st + 8));
            if (TAIL8) Mma<T>::k8(s[n], qt[0], qt[1], *(const u32*)(kr + 16 * KSTEPS));
        }

        // Scores in base 2 with bias and mask, and the row maxima over this tile.
        float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int n = 0; n < STILES; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int r = e / 2;
                const u64 key = kv0 + 8 * n + 2 * t + (e & 1);
                float x = s[n][e] * scale_log2;
                if (key >= kv_len) {
                    x = -INFINITY;
                } else if (bias != nullptr && row[r] < q_len) {
                    x += to_float(bias[(h * q_len + row[r]) * kv_len + key]) * LOG2E;
                }
                s[n][e] = x;
                tile_max[r] = fmaxf(tile_max[r], x);
            }
        }
        float base[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            // The four threads of a quad hold one row between them.
            tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
            tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
            const float m_new = fmaxf(m[r], tile_max[r]);
            base[r] = m_new == -INFINITY ? 0.0f : m_new;  // all -inf so far: weights stay 0
            const float correction = exp2f(m[r] - base[r]);
            m[r] = m_new;
            l[r] *= correction;
#pragma unroll
            for (int d = 0; d < DTILES; ++d) {
                o[d][2 * r] *= correction;
                o[d][2 * r + 1] *= correction;
            }
        }
#pragma unroll
        for (int n = 0; n < STILES; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                s[n][e] = exp2f(s[n][e] - base[e / 2]);
                l[e / 2] += s[n][e];
            }
        }

        // O += P V, 16 keys per step: the C fragments of score tiles 2 kc and 2 kc + 1 are the A
        // fragment of P; B(k = key, n = dim) = V[key][dim], two keys of one dim per word.
#pragma unroll
        for (int kc = 0; kc < BLOCK_KV / 16; ++kc) {
            const u32 pa[4] = {Mma<T>::pack(s[2 * kc][0], s[2 * kc][1]), Mma<T>::pack(s[2 * kc][2], s[2 * kc][3]),
                               Mma<T>::pack(s[2 * kc + 1][0], s[2 * kc + 1][1]),
                               Mma<T>::pack(s[2 * kc + 1][2], s[2 * kc + 1][3])};
            const u16* vr = vs + (16 * kc + 2 * t) * PITCH + g;
#pragma unroll
            for (int d = 0; d < DTILES; ++d) {
                const u16* p = vr + 8 * d;
                const u32 b0 = (u32)p[0] | (u32)p[PITCH] << 16;
                const u32 b1 = (u32)p[8 * PITCH] | (u32)p[9 * PITCH] << 16;
                Mma<T>::k16(o[d], pa, b0, b1);
            }
        }
    }

    // Each thread summed l over its own keys: add the quad's partial sums, then out = O / l.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
        if (row[r] >= q_len) continue;
        const float inv = 1.0f / l[r];
        u16* orow = (u16*)out + (b * q_len + row[r]) * out_stride + col0 + 2 * t;
#pragma unroll
        for (int d = 0; d < DTILES; ++d)
            *(u32*)(orow + 8 * d) = Mma<T>::pack(o[d][2 * r] * inv, o[d][2 * r + 1] * inv);
    }
}

// Minimum 1 block per multiprocessor: without it ptxas caps D = 64 and 96 at 128 registers and
// spills (seen with ptxas 12.9); with it every variant fits without spills (scripts/check_kernels.sh).
#define ATTENTION_MMA(name, T, D)                                                                      \
    extern "C" __global__ void __launch_bounds__(32 * WARPS, 1)                                       \
        attention_mma_##name##_d##D(const T* q, const T* k, const T* v, const T* bias, T* out, u64 q_len, \
                                    u64 kv_len, u64 q_stride, u64 kv_stride, u64 out_stride, float scale) { \
        attention_mma<T, D>(q, k, v, bias, out, q_len, kv_len, q_stride, kv_stride, out_stride, scale); \
    }
#define ATTENTION_MMA_DIMS(name, T)                                                                    \
    ATTENTION_MMA(name, T, 64) ATTENTION_MMA(name, T, 72) ATTENTION_MMA(name, T, 96) ATTENTION_MMA(name, T, 128)
ATTENTION_MMA_DIMS(f16, f16)
ATTENTION_MMA_DIMS(bf16, bf16)
