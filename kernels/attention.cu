// attention on tensor cores (FlashAttention-2 scheme): out = softmax(q k^T * scale + bias) v
// per (sample, head), for f16/bf16 and head dims D in {64, 72, 96, 128}; layouts as in
// src/backend/ops.rs `Attention`. attention_fallback.cu covers everything else.
//
// A block of WARPS warps owns BLOCK_Q = 16 WARPS query rows of one (sample, head); warp w owns
// rows 16 w .. 16 w + 15, one m16 tile, whose Q fragments stay in registers for the whole
// kernel. K and V pass through shared memory BLOCK_KV keys at a time, copied with cp.async and
// read with ldmatrix (kernels/ptx_ops.cuh). Pipelined as FlashAttention-2: the V tile is copied
// while S = Q K^T is computed and the next K tile while O += P V is. Per tile:
//   S = Q K^T          mma m16n8k16 over D (plus one m16n8k8 step when D % 16 == 8, so 72
//                      needs no padding to 80 or 96), f32 accumulation;
//   online softmax     in base 2: x = S scale log2(e) + bias log2(e), keys >= kv_len -> -inf;
//                      m_new = max(m, max_j x_j), O *= 2^(m - m_new), l = l 2^(m - m_new) + sum_j p_j
//                      with p_j = 2^(x_j - m_new);
//   O += P V           P (rounded to the storage type) reuses the S accumulator registers as
//                      the A operand; V fragments come from shared memory by ldmatrix.trans.
// Finally out = O / l. Fragment layouts (PTX ISA, mma.m16n8k16 / m16n8k8 with .f16/.bf16), for
// lane = 4 g + t: A a0 = (row g, cols 2t, 2t+1), a1 = row g + 8, a2 = cols + 8, a3 = both;
// B b0 = (k rows 2t, 2t+1, col g), b1 = k rows + 8; C c0, c1 = (row g, cols 2t, 2t+1),
// c2, c3 = row g + 8.
//
// Host preconditions (src/backend/cuda/encode/attention.rs): q and out 4-byte aligned with even
// strides (pairs are moved as one 32-bit word), k and v 16-byte aligned with strides a multiple
// of 8 elements (rows are copied 16 bytes at a time by cp.async).
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
    constexpr int VECS = D / 8;             // 16-byte vectors per K/V row
    static_assert(KSTEPS % 2 == 0 && STILES % 4 == 0, "K fragments are loaded two k16 steps or four key tiles at a time");
    // Shared row pitch in 16-byte vectors: the least odd number >= VECS (9, 9, 13, 17). Shared
    // memory serves 16-byte accesses a quarter warp (a phase) at a time, conflict-free when its 8
    // vectors fall in 8 distinct groups of 4 banks, i.e. have distinct slot numbers mod 8 (slot
    // r P8 + c for row r, vector c). An ldmatrix phase reads vector c of 8 consecutive rows:
    // distinct exactly when P8 is odd. The tile copies: see `load_tile`.
    constexpr int P8 = VECS | 1;
    constexpr int OCTETS = VECS / 8, REM = VECS % 8;  // full and partial groups of 8 vectors of a row
    static_assert(OCTETS >= 1 && 8 % (REM == 0 ? 8 : REM) == 0 && BLOCK_KV % 8 == 0, "phases of the tile copies");
    __shared__ Vec16 k_tile[BLOCK_KV * P8];
    __shared__ Vec16 v_tile[BLOCK_KV * P8];

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const u64 h = blockIdx.y, b = blockIdx.z;
    const u64 col0 = h * D;
    // The two query rows this thread holds fragments of: g and g + 8 of the warp's tile.
    const u64 row0 = (u64)blockIdx.x * BLOCK_Q + warp * 16 + g;
    auto row = [&](int r) -> u64 { return row0 + 8 * r; };
    const bool live[2] = {row0 < q_len, row0 + 8 < q_len};  // rows inside the sequence

    // Q fragments (A operand of S = Q K^T): elements (row r, cols c, c + 1) as one word; rows
    // beyond q_len are zero (their scores are finite and never stored).
    const u16* q16 = (const u16*)q;
    auto q_pair = [&](int r, int c) -> u32 {
        return live[r] ? *(const u32*)(q16 + (b * q_len + row(r)) * q_stride + col0 + c) : 0u;
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

    // Issues the copies of the K or V rows of keys kv0 .. kv0 + BLOCK_KV - 1 into `tile` as one
    // cp.async group; keys past the end are zeros (never NaN), stored directly. The 8 lanes of a
    // phase (e / 8) copy 8 vectors with distinct slots mod 8: with no padding (P8 = VECS, D = 72)
    // 8 consecutive slots; else first one row's octet (vectors 8 o .. 8 o + 7), then the REM
    // leftover vectors of 8 / REM rows REM apart (row stride REM moves the slot by REM P8, an odd
    // multiple of REM, so the 8 / REM rows take distinct multiples of REM mod 8). Every lane of a
    // warp copies equally often.
    auto load_tile = [&](Vec16* tile, const T* src, u64 kv0) {
        for (int e = threadIdx.x; e < BLOCK_KV * VECS; e += 32 * WARPS) {
            const int p = e / 8, lp = e % 8;
            int r = p / OCTETS, c = p % OCTETS * 8 + lp;
            if constexpr (P8 == VECS) {
                r = e / VECS, c = e % VECS;
            } else if constexpr (REM != 0) {
                if (p >= BLOCK_KV * OCTETS) {
                    const int pr = p - BLOCK_KV * OCTETS;  // block pr / REM of 8 rows, first row pr % REM
                    r = pr / REM * 8 + pr % REM + lp / REM * REM;
                    c = OCTETS * 8 + lp % REM;
                }
            }
            const u64 key = kv0 + r;
            Vec16* slot = &tile[r * P8 + c];
            if (key < kv_len)
                cp_async_cg_16(slot, (const u16*)src + (b * kv_len + key) * kv_stride + col0 + 8 * c);
            else
                *slot = Vec16{{0u, 0u, 0u, 0u}};
        }
        cp_async_commit_group();
    };
    // ldmatrix rows: lane 8 i + lr gives row lr of matrix i.
    const int lr = lane % 8, li = lane / 8;

    load_tile(k_tile, k, 0);
    for (u64 kv0 = 0; kv0 < kv_len; kv0 += BLOCK_KV) {
        cp_async_wait_group<0>();
        __syncthreads();  // the K tile is in; every warp is done with the previous V tile
        load_tile(v_tile, v, kv0);

        // S = Q K^T: B(k = dim, n = key) = K[key][dim], so b0 is dims 2t, 2t + 1 of key g: row g,
        // elements 2t, 2t + 1 of the 8 x 8 matrix (8 keys, 8 dims), as ldmatrix hands them out.
        // One .x4 holds two k16 steps of key tile n (matrix i: dims 8 i on); the k8 tail (dims
        // 16 KSTEPS .. + 7) of key tiles 4 q .. 4 q + 3 is another .x4 (matrix i: key tile 4 q + i).
        float s[STILES][4];
#pragma unroll
        for (int n = 0; n < STILES; ++n) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
            const Vec16* kr = k_tile + (8 * n + lr) * P8 + li;
#pragma unroll
            for (int st = 0; st < KSTEPS; st += 2) {
                u32 kb[4];
                ldmatrix_x4(kb, kr + 2 * st);
                Mma<T>::k16(s[n], qa[st], kb[0], kb[1]);
                Mma<T>::k16(s[n], qa[st + 1], kb[2], kb[3]);
            }
        }
        if (TAIL8) {
#pragma unroll
            for (int q4 = 0; q4 < STILES / 4; ++q4) {
                u32 kb[4];
                ldmatrix_x4(kb, k_tile + (32 * q4 + lane) * P8 + 2 * KSTEPS);
#pragma unroll
                for (int i = 0; i < 4; ++i) Mma<T>::k8(s[4 * q4 + i], qt[0], qt[1], kb[i]);
            }
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
                } else if (bias != nullptr && live[r]) {
                    x += to_float(bias[(h * q_len + row(r)) * kv_len + key]) * LOG2E;
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

        cp_async_wait_group<0>();
        __syncthreads();  // the V tile is in; every warp is done with the K tile
        if (kv0 + BLOCK_KV < kv_len) load_tile(k_tile, k, kv0 + BLOCK_KV);

        // O += P V, 16 keys per step: the C fragments of score tiles 2 kc and 2 kc + 1 are the A
        // fragment of P; B(k = key, n = dim) = V[key][dim], so b0 is keys 2t, 2t + 1 of dim g:
        // column g, rows 2t, 2t + 1 of the 8 x 8 matrix (8 keys, 8 dims), ldmatrix .trans. One
        // .x4 holds dim tiles d and d + 1 (matrix i: keys 8 (i % 2) on, dims 8 (d + i / 2) on).
#pragma unroll
        for (int kc = 0; kc < BLOCK_KV / 16; ++kc) {
            const u32 pa[4] = {Mma<T>::pack(s[2 * kc][0], s[2 * kc][1]), Mma<T>::pack(s[2 * kc][2], s[2 * kc][3]),
                               Mma<T>::pack(s[2 * kc + 1][0], s[2 * kc + 1][1]),
                               Mma<T>::pack(s[2 * kc + 1][2], s[2 * kc + 1][3])};
            const Vec16* vr = v_tile + (16 * kc + 8 * (li % 2) + lr) * P8 + li / 2;
#pragma unroll
            for (int d = 0; d + 1 < DTILES; d += 2) {
                u32 vb[4];
                ldmatrix_x4_trans(vb, vr + d);
                Mma<T>::k16(o[d], pa, vb[0], vb[1]);
                Mma<T>::k16(o[d + 1], pa, vb[2], vb[3]);
            }
            if (DTILES % 2 == 1) {  // D = 72: the ninth dim tile, lanes 0 .. 15 give its rows
                u32 vb[2];
                ldmatrix_x2_trans(vb, vr + DTILES - 1);
                Mma<T>::k16(o[DTILES - 1], pa, vb[0], vb[1]);
            }
        }
    }

    // Each thread summed l over its own keys: add the quad's partial sums, then out = O / l.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
        if (!live[r]) continue;
        const float inv = 1.0f / l[r];
        u16* orow = (u16*)out + (b * q_len + row(r)) * out_stride + col0 + 2 * t;
#pragma unroll
        for (int d = 0; d < DTILES; ++d)
            *(u32*)(orow + 8 * d) = Mma<T>::pack(o[d][2 * r] * inv, o[d][2 * r + 1] * inv);
    }
}

// Minimum blocks per multiprocessor: without a minimum ptxas caps D = 64 and 96 at 128 registers
// and spills (seen with ptxas 12.9). D <= 96 asks for 3 (at most 168 registers, 12 warps per SM),
// which they fit without spills (D = 96 exactly, since the row bounds became the two `live`
// flags); left at 1 they take 165-198 and 2 blocks. D = 128 needs more (scripts/check_kernels.sh).
#define MIN_BLOCKS(D) ((D) <= 96 ? 3 : 1)
#define ATTENTION_MMA(name, T, D)                                                                      \
    extern "C" __global__ void __launch_bounds__(32 * WARPS, MIN_BLOCKS(D))                           \
        attention_mma_##name##_d##D(const T* q, const T* k, const T* v, const T* bias, T* out, u64 q_len, \
                                    u64 kv_len, u64 q_stride, u64 kv_stride, u64 out_stride, float scale) { \
        attention_mma<T, D>(q, k, v, bias, out, q_len, kv_len, q_stride, kv_stride, out_stride, scale); \
    }
#define ATTENTION_MMA_DIMS(name, T)                                                                    \
    ATTENTION_MMA(name, T, 64) ATTENTION_MMA(name, T, 72) ATTENTION_MMA(name, T, 96) ATTENTION_MMA(name, T, 128)
ATTENTION_MMA_DIMS(f16, f16)
ATTENTION_MMA_DIMS(bf16, bf16)
