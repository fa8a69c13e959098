// A tensor-core tiled matrix product for 16-bit storage (f16, bf16) with f32 accumulation, for
// the GEMMs cuBLASLt does not take (conv2d as an implicit GEMM, linear layers cuBLASLt cannot
// express or is absent for); tiled_gemm.cuh is the SIMT one (f32 storage). One block of
// MMA_THREADS threads computes the MMA_BM x MMA_BN tile at (m0, n0) of
//   C[m, n] = sum_k A(m, k) B(k, n)
// with mma.sync m16n8k16 (row.col): both operands are kept k-contiguous in shared memory,
// A as rows m, B as rows n, MMA_BK = 32 k values (16 words of two 16-bit values) per row.
//
// Operands are gathered by functors returning one 32-bit word, the values at k (bits 0..15)
// and k + 1 (bits 16..31) for an even k, zero past the end of the matrix:
//   a(r, k)  r = local row of A (m = m0 + r); lanes of a warp take 16 consecutive words of two
//            rows (k-contiguous global memory: linear's x and w, conv2d's weights);
//   b(r, k)  r = local row of B (n = n0 + r); as a(r, k) when B_K_FASTEST, else lanes take 32
//            consecutive n at one word (conv2d's im2col gather, contiguous in pixels): then a
//            thread always loads the same r, mma_b_row(), and the functor may precompute it.
//
// Warps: 2 x 2, warp (wm, wn) owns rows 32 wm .. +32 (two m16 tiles) and columns 32 wn .. +32
// (four n8 tiles): acc[i][j][4] is the C fragment of m tile i, n tile j. Fragment layouts (PTX
// ISA, mma.m16n8k16 .f16/.bf16), lane = 4 g + t: A a0 = (row g, k 2t, 2t+1), a1 = row g + 8,
// a2 = k + 8, a3 = both; B b0 = (k 2t, 2t+1, col g), b1 = k + 8; C c0, c1 = (row g, cols 2t,
// 2t+1), c2, c3 = row g + 8. mma_c_row / mma_c_col give the element of acc a thread holds.
//
// Shared layout, swizzled instead of padded: word w of row r is at r * 16 + (w ^ swz(r)),
// swz(r) = ((r >> 1) & 3) << 2 | ((r >> 3) & 3). Bank = 16 (r & 1) + (w ^ swz(r)) (mod 32).
// * Fragment loads: rows 8 q + g, words 8 s + 4 h + t (g < 8, t < 4 across the warp): the low
//   two bits of the word are t ^ (q & 3), the next two (2 s + h) ^ (g >> 1), and g & 1 picks
//   the half: 32 distinct banks.
// * k-fastest stores: 16 words of rows 2 p and 2 p + 1: the swizzle permutes a row's words and
//   the parity picks the half: 32 distinct banks.
// * n-fastest stores: one word of 32 consecutive rows: (r >> 1) & 15 takes 16 values and
//   swz(r) is a bijection of it, the parity picks the half: 32 distinct banks.
// So every shared load and store is conflict-free; a padded pitch (as attention.cu's) makes
// the fragment loads conflict-free but the n-fastest stores 4-way conflicted.
#pragma once
#include "common.cuh"

#define MMA_BM 64
#define MMA_BN 64
#define MMA_BK 32
#define MMA_THREADS 128
// Kernels built on this declare __launch_bounds__(MMA_THREADS, MMA_MIN_BLOCKS): a register cap
// of 128 per thread. Without a minimum ptxas 12.9 capped them at 96 on sm_90 and spilled.
#define MMA_MIN_BLOCKS 4
#define MMA_WORDS (MMA_BK / 2)

template <typename T> __device__ __forceinline__ void mma_k16(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1);
template <> __device__ __forceinline__ void mma_k16<f16>(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    mma_m16n8k16_f16(c, a, b0, b1);
}
template <> __device__ __forceinline__ void mma_k16<bf16>(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    mma_m16n8k16_bf16(c, a, b0, b1);
}

__device__ __forceinline__ int mma_swizzled(int r, int w) { return r * MMA_WORDS + (w ^ ((r >> 1 & 3) << 2 | (r >> 3 & 3))); }

// The row of B a thread loads when B is gathered n-fastest.
__device__ __forceinline__ int mma_b_row() { return (int)threadIdx.x % MMA_BN; }

// Local (row, column) of acc[i][j][e].
__device__ __forceinline__ int mma_c_row(int i, int e) {
    return (int)threadIdx.x / 64 * 32 + 16 * i + (int)threadIdx.x % 32 / 4 + 8 * (e / 2);
}
__device__ __forceinline__ int mma_c_col(int j, int e) {
    return (int)threadIdx.x / 32 % 2 * 32 + 8 * j + (int)threadIdx.x % 4 * 2 + e % 2;
}

// The bits of a 16-bit storage value, and a word of two (lo at k, hi at k + 1).
template <typename T> __device__ __forceinline__ u32 bits16(T v) { return v.bits; }
__device__ __forceinline__ u32 pair16(u32 lo, u32 hi) { return lo | hi << 16; }

// The word of elements i, i + 1 of a k-contiguous row of len elements (zero past the end):
// one 32-bit load where the pair is 4-byte aligned, else two 16-bit loads.
template <typename T> __device__ __forceinline__ u32 row_pair(const T* row, u64 i, u64 len) {
    const T* p = row + i;
    if (i + 1 < len && ((u64)p & 3) == 0) return *(const u32*)p;
    return pair16(i < len ? bits16(p[0]) : 0u, i + 1 < len ? bits16(p[1]) : 0u);
}

template <typename T, bool B_K_FASTEST, class LoadA, class LoadB>
__device__ __forceinline__ void mma_tile_product(u64 K, LoadA a, LoadB b, float (&acc)[2][4][4]) {
    __shared__ u32 as[MMA_BM * MMA_WORDS];
    __shared__ u32 bs[MMA_BN * MMA_WORDS];
    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int wm = threadIdx.x / 64, wn = threadIdx.x / 32 % 2;
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 4; ++j)
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
    for (u64 k0 = 0; k0 < K; k0 += MMA_BK) {
#pragma unroll
        for (int e = threadIdx.x; e < MMA_BM * MMA_WORDS; e += MMA_THREADS) {
            const int r = e / MMA_WORDS, w = e % MMA_WORDS;
            as[mma_swizzled(r, w)] = a(r, k0 + 2 * w);
        }
#pragma unroll
        for (int e = threadIdx.x; e < MMA_BN * MMA_WORDS; e += MMA_THREADS) {
            const int r = B_K_FASTEST ? e / MMA_WORDS : e % MMA_BN, w = B_K_FASTEST ? e % MMA_WORDS : e / MMA_BN;
            bs[mma_swizzled(r, w)] = b(r, k0 + 2 * w);
        }
        __syncthreads();
#pragma unroll
        for (int s = 0; s < MMA_BK / 16; ++s) {
            u32 af[2][4], bf[4][2];
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const int r = 32 * wm + 16 * i + g;
                af[i][0] = as[mma_swizzled(r, 8 * s + t)];
                af[i][1] = as[mma_swizzled(r + 8, 8 * s + t)];
                af[i][2] = as[mma_swizzled(r, 8 * s + 4 + t)];
                af[i][3] = as[mma_swizzled(r + 8, 8 * s + 4 + t)];
            }
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int r = 32 * wn + 8 * j + g;
                bf[j][0] = bs[mma_swizzled(r, 8 * s + t)];
                bf[j][1] = bs[mma_swizzled(r, 8 * s + 4 + t)];
            }
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) mma_k16<T>(acc[i][j], af[i], bf[j][0], bf[j][1]);
        }
        __syncthreads();
    }
}
