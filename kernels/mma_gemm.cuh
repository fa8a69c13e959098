// A tensor-core tiled matrix product with f32 accumulation, for the GEMMs cuBLASLt does not
// take (conv2d as an implicit GEMM, linear layers cuBLASLt cannot express or is absent for).
// One block of MMA_THREADS threads computes the MMA_BM x MMA_BN tile at (m0, n0) of
//   C[m, n] = sum_k A(m, k) B(k, n)
// with mma.sync (row.col), both operands kept k-contiguous in shared memory, A as rows m, B as
// rows n, MMA_BK = 32 k values per row:
//   f16, bf16  m16n8k16 on the values as stored, two per 32-bit word;
//   f32        m16n8k8 .tf32, three per product ("3xTF32", as CUTLASS's fast accurate f32
//              GEMM): x = hi + lo with hi = tf32(x), lo = tf32(x - hi), and a b ~ a_hi b_hi +
//              a_hi b_lo + a_lo b_hi (the dropped a_lo b_lo is below 2^-22 |a b|), one f32 per
//              word.
//
// Operands are gathered by functors returning one word: for 16-bit storage the values at k
// (bits 0..15) and k + 1 (bits 16..31) for an even k, for f32 the bits of the value at k; zero
// past the end of the matrix:
//   a(r, k)  r = local row of A (m = m0 + r); the lanes of a warp take consecutive words of a
//            row (k-contiguous global memory: linear's x and w, conv2d's weights);
//   b(r, k)  r = local row of B (n = n0 + r); as a(r, k) when B_K_FASTEST, else the lanes take
//            32 consecutive n at one word (conv2d's im2col gather, contiguous in pixels): then a
//            thread always loads the same r, mma_b_row(), and the functor may precompute it.
//
// Warps: 2 x 2, warp (wm, wn) owns rows 32 wm .. +32 (two m16 tiles) and columns 32 wn .. +32
// (four n8 tiles): acc[i][j][4] is the C fragment of m tile i, n tile j. Fragment layouts (PTX
// ISA, mma.m16n8k16 .f16/.bf16 and mma.m16n8k8 .tf32), lane = 4 g + t:
//   16-bit  A a0 = (row g, k 2t, 2t+1), a1 = row g + 8, a2 = k + 8, a3 = both; B b0 = (k 2t,
//           2t+1, col g), b1 = k + 8;
//   tf32    A a0 = (row g, k t), a1 = row g + 8, a2 = k + 4, a3 = both; B b0 = (k t, col g),
//           b1 = k + 4;
//   C c0, c1 = (row g, cols 2t, 2t+1), c2, c3 = row g + 8 (mma_c_row / mma_c_col).
//
// Shared layout, swizzled instead of padded: word w of row r is at r W + (w ^ swz(r)), with W
// words per row. Either way the fragment loads of a warp read rows 8 q + g at words whose low
// two bits are t, and every shared load and store is conflict-free:
//   W = 16 (16-bit): swz(r) = ((r >> 1) & 3) << 2 | ((r >> 3) & 3), bank = 16 (r & 1) + (w ^
//     swz(r)). Fragment loads: low two bits t ^ (q & 3), the next two (2 s + h) ^ (g >> 1), g & 1
//     the half. k-fastest stores (16 words of rows 2 p, 2 p + 1): a permutation per row, the
//     parity the half. n-fastest stores (one word of 32 rows): swz(r) is a bijection of
//     (r >> 1) & 15, the parity the half.
//   W = 32 (f32): swz(r) = (r & 7) << 2 | ((r >> 3) & 3), bank = w ^ swz(r). Fragment loads:
//     low two bits t ^ (q & 3), the next three (2 s + h) ^ g. k-fastest stores (one row): a
//     permutation. n-fastest stores (32 rows): swz(r) takes 32 distinct values.
// A padded pitch (as attention.cu's) makes the fragment loads conflict-free but leaves the
// n-fastest stores 4-way conflicted.
#pragma once
#include "common.cuh"

#define MMA_BM 64
#define MMA_BN 64
#define MMA_BK 32
#define MMA_THREADS 128

// Values per shared word: two 16-bit ones, or one f32. Kernels built on this declare
// __launch_bounds__(MMA_THREADS, MmaWord<T>::MIN_BLOCKS): a register cap of 128 per thread
// (16-bit) or 168 (f32). Without a minimum ptxas 12.9 capped the 16-bit ones at 96 on sm_90 and
// spilled; at 128 the f32 conv2d (3xTF32: hi and lo fragments) spilled.
template <typename T> struct MmaWord {
    static constexpr int VALUES = 2, MIN_BLOCKS = 4;
};
template <> struct MmaWord<float> {
    static constexpr int VALUES = 1, MIN_BLOCKS = 3;
};

template <typename T> __device__ __forceinline__ void mma_k16(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1);
template <> __device__ __forceinline__ void mma_k16<f16>(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    mma_m16n8k16_f16(c, a, b0, b1);
}
template <> __device__ __forceinline__ void mma_k16<bf16>(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    mma_m16n8k16_bf16(c, a, b0, b1);
}

template <int WORDS> __device__ __forceinline__ int mma_swizzled(int r, int w) {
    if (WORDS == 16) return r * 16 + (w ^ ((r >> 1 & 3) << 2 | (r >> 3 & 3)));
    return r * 32 + (w ^ ((r & 7) << 2 | (r >> 3 & 3)));
}

// The row of B a thread loads when B is gathered n-fastest.
__device__ __forceinline__ int mma_b_row() { return (int)threadIdx.x % MMA_BN; }

// Local (row, column) of acc[i][j][e].
__device__ __forceinline__ int mma_c_row(int i, int e) {
    return (int)threadIdx.x / 64 * 32 + 16 * i + (int)threadIdx.x % 32 / 4 + 8 * (e / 2);
}
__device__ __forceinline__ int mma_c_col(int j, int e) {
    return (int)threadIdx.x / 32 % 2 * 32 + 8 * j + (int)threadIdx.x % 4 * 2 + e % 2;
}

// The bits of a storage value, and a word of two 16-bit ones (lo at k, hi at k + 1).
__device__ __forceinline__ u32 value_bits(float v) { return __float_as_uint(v); }
template <typename T> __device__ __forceinline__ u32 value_bits(T v) { return v.bits; }
__device__ __forceinline__ u32 pair16(u32 lo, u32 hi) { return lo | hi << 16; }

// The word at element i of a k-contiguous row of len elements (zero past the end); a 16-bit
// pair is one 32-bit load where it is 4-byte aligned, else two 16-bit loads.
template <typename T> __device__ __forceinline__ u32 row_word(const T* row, u64 i, u64 len) {
    const T* p = row + i;
    if (MmaWord<T>::VALUES == 1) return i < len ? value_bits(p[0]) : 0u;
    if (i + 1 < len && ((u64)p & 3) == 0) return *(const u32*)p;
    return pair16(i < len ? value_bits(p[0]) : 0u, i + 1 < len ? value_bits(p[1]) : 0u);
}

// x as tf32 hi + lo.
__device__ __forceinline__ void tf32_split(u32 x, u32& hi, u32& lo) {
    hi = cvt_rna_tf32_f32(__uint_as_float(x));
    lo = cvt_rna_tf32_f32(__uint_as_float(x) - __uint_as_float(hi));
}

// One k step of MMA_BK on the tiles in shared memory, 16-bit storage.
template <typename T>
__device__ __forceinline__ void mma_step(const u32* as, const u32* bs, float (&acc)[2][4][4], int wm, int wn, int g, int t) {
#pragma unroll
    for (int s = 0; s < MMA_BK / 16; ++s) {
        u32 af[2][4], bf[4][2];
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int r = 32 * wm + 16 * i + g;
            af[i][0] = as[mma_swizzled<16>(r, 8 * s + t)];
            af[i][1] = as[mma_swizzled<16>(r + 8, 8 * s + t)];
            af[i][2] = as[mma_swizzled<16>(r, 8 * s + 4 + t)];
            af[i][3] = as[mma_swizzled<16>(r + 8, 8 * s + 4 + t)];
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int r = 32 * wn + 8 * j + g;
            bf[j][0] = bs[mma_swizzled<16>(r, 8 * s + t)];
            bf[j][1] = bs[mma_swizzled<16>(r, 8 * s + 4 + t)];
        }
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) mma_k16<T>(acc[i][j], af[i], bf[j][0], bf[j][1]);
    }
}

// The same for f32 storage, 3xTF32 (the small terms first).
template <>
__device__ __forceinline__ void mma_step<float>(const u32* as, const u32* bs, float (&acc)[2][4][4], int wm, int wn, int g,
                                                int t) {
#pragma unroll
    for (int s = 0; s < MMA_BK / 8; ++s) {
        u32 ah[2][4], al[2][4], bh[4][2], bl[4][2];
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int r = 32 * wm + 16 * i + g;
            tf32_split(as[mma_swizzled<32>(r, 8 * s + t)], ah[i][0], al[i][0]);
            tf32_split(as[mma_swizzled<32>(r + 8, 8 * s + t)], ah[i][1], al[i][1]);
            tf32_split(as[mma_swizzled<32>(r, 8 * s + 4 + t)], ah[i][2], al[i][2]);
            tf32_split(as[mma_swizzled<32>(r + 8, 8 * s + 4 + t)], ah[i][3], al[i][3]);
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int r = 32 * wn + 8 * j + g;
            tf32_split(bs[mma_swizzled<32>(r, 8 * s + t)], bh[j][0], bl[j][0]);
            tf32_split(bs[mma_swizzled<32>(r, 8 * s + 4 + t)], bh[j][1], bl[j][1]);
        }
#pragma unroll
        for (int i = 0; i < 2; ++i) {
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                mma_m16n8k8_tf32(acc[i][j], al[i], bh[j][0], bh[j][1]);
                mma_m16n8k8_tf32(acc[i][j], ah[i], bl[j][0], bl[j][1]);
                mma_m16n8k8_tf32(acc[i][j], ah[i], bh[j][0], bh[j][1]);
            }
        }
    }
}

template <typename T, bool B_K_FASTEST, class LoadA, class LoadB>
__device__ __forceinline__ void mma_tile_product(u64 K, LoadA a, LoadB b, float (&acc)[2][4][4]) {
    constexpr int PER = MmaWord<T>::VALUES, WORDS = MMA_BK / PER;
    __shared__ u32 as[MMA_BM * WORDS];
    __shared__ u32 bs[MMA_BN * WORDS];
    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int wm = threadIdx.x / 64, wn = threadIdx.x / 32 % 2;
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 4; ++j)
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
    for (u64 k0 = 0; k0 < K; k0 += MMA_BK) {
#pragma unroll
        for (int e = threadIdx.x; e < MMA_BM * WORDS; e += MMA_THREADS) {
            const int r = e / WORDS, w = e % WORDS;
            as[mma_swizzled<WORDS>(r, w)] = a(r, k0 + PER * w);
        }
#pragma unroll
        for (int e = threadIdx.x; e < MMA_BN * WORDS; e += MMA_THREADS) {
            const int r = B_K_FASTEST ? e / WORDS : e % MMA_BN, w = B_K_FASTEST ? e % WORDS : e / MMA_BN;
            bs[mma_swizzled<WORDS>(r, w)] = b(r, k0 + PER * w);
        }
        __syncthreads();
        mma_step<T>(as, bs, acc, wm, wn, g, t);
        __syncthreads();
    }
}
