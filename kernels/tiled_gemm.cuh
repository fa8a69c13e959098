// A plain SIMT tiled matrix product with f32 accumulation, for the GEMMs cuBLASLt does not
// take (conv2d as an implicit GEMM, and linear layers cuBLASLt cannot express or is absent for):
// one block of TILE_THREADS threads computes the TILE_M x TILE_N tile at (m0, n0) of
//   C[m, n] = sum_k A(m, k) B(k, n)
// where A and B are functors returning f32 (they gather, convert and stride as they like).
// Thread (ty, tx) = (threadIdx.x / 16, threadIdx.x % 16) owns acc[i][j] = C(m0 + ty + 16 i,
// n0 + tx + 16 j). Per K step of TILE_K, both tiles go through shared memory.
#pragma once
#include "common.cuh"

#define TILE_M 64
#define TILE_N 64
#define TILE_K 16
// Kernels built on this declare __launch_bounds__(TILE_THREADS, 1): without the 1, ptxas 12.9
// capped linear at 48 registers on sm_90 and spilled (scripts/check_kernels.sh caught it).
#define TILE_THREADS 256

__device__ __forceinline__ int tile_row(int i) { return (int)threadIdx.x / 16 + 16 * i; }
__device__ __forceinline__ int tile_col(int j) { return (int)threadIdx.x % 16 + 16 * j; }

template <class LoadA, class LoadB>
__device__ __forceinline__ void tile_product(u64 M, u64 N, u64 K, u64 m0, u64 n0, LoadA a, LoadB b,
                                             float (&acc)[4][4]) {
    // +1 column: the k-major stores below do not all land in one bank.
    __shared__ float as[TILE_K][TILE_M + 1];
    __shared__ float bs[TILE_K][TILE_N + 1];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
    for (u64 k0 = 0; k0 < K; k0 += TILE_K) {
        // k fastest across threads: consecutive threads read consecutive k of one row.
        for (int e = threadIdx.x; e < TILE_M * TILE_K; e += TILE_THREADS) {
            const int kk = e % TILE_K, mm = e / TILE_K;
            const u64 m = m0 + mm, k = k0 + kk;
            as[kk][mm] = m < M && k < K ? a(m, k) : 0.0f;
        }
        for (int e = threadIdx.x; e < TILE_N * TILE_K; e += TILE_THREADS) {
            const int kk = e % TILE_K, nn = e / TILE_K;
            const u64 n = n0 + nn, k = k0 + kk;
            bs[kk][nn] = n < N && k < K ? b(k, n) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TILE_K; ++kk) {
            float av[4], bv[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) av[i] = as[kk][tile_row(i)];
#pragma unroll
            for (int j = 0; j < 4; ++j) bv[j] = bs[kk][tile_col(j)];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }
}
