// linear: out[r, c] (+)= act(sum_i x[r x_stride + i] w[c w_stride + i] + bias[c]) for r < m,
// c < n (src/backend/ops.rs `Gemm`), with `accumulate` adding the activated value to what out
// holds. The fallback of the cuBLASLt path (src/backend/cuda/encode/linear.rs says when it
// runs): f16/bf16 on tensor cores (mma_gemm.cuh, MMA_THREADS threads), f32 on SIMT tiles
// (tiled_gemm.cuh, TILE_THREADS threads). Grid (ceil(n / 64), ceil(m / 64)).
#include "activation.cuh"
#include "mma_gemm.cuh"
#include "tiled_gemm.cuh"

// The epilogue of one output element: bias, activation, accumulation, rounding.
template <typename T>
__device__ __forceinline__ void linear_store(float v, const T* bias, T* out, u64 r, u64 c, u64 n, u64 act,
                                             u64 accumulate) {
    if (bias != nullptr) v += to_float(bias[c]);
    v = activate(v, act);
    T* o = out + r * n + c;
    if (accumulate) v += to_float(*o);
    *o = from_float<T>(v);
}

__device__ void linear_simt(const float* x, u64 x_stride, const float* w, u64 w_stride, const float* bias, float* out,
                            u64 m, u64 n, u64 k, u64 act, u64 accumulate) {
    const u64 m0 = (u64)blockIdx.y * TILE_M, n0 = (u64)blockIdx.x * TILE_N;
    float acc[4][4];
    tile_product(
        m, n, k, m0, n0, [&](u64 r, u64 i) { return x[r * x_stride + i]; },
        [&](u64 i, u64 c) { return w[c * w_stride + i]; }, acc);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const u64 r = m0 + tile_row(i), c = n0 + tile_col(j);
            if (r < m && c < n) linear_store(acc[i][j], bias, out, r, c, n, act, accumulate);
        }
    }
}

template <typename T>
__device__ void linear_mma(const T* x, u64 x_stride, const T* w, u64 w_stride, const T* bias, T* out, u64 m, u64 n,
                           u64 k, u64 act, u64 accumulate) {
    const u64 m0 = (u64)blockIdx.y * MMA_BM, n0 = (u64)blockIdx.x * MMA_BN;
    float acc[2][4][4];
    mma_tile_product<T, true>(
        k, [&](int r, u64 i) { return m0 + r < m ? row_pair(x + (m0 + r) * x_stride, i, k) : 0u; },
        [&](int r, u64 i) { return n0 + r < n ? row_pair(w + (n0 + r) * w_stride, i, k) : 0u; }, acc);
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const u64 r = m0 + mma_c_row(i, e), c = n0 + mma_c_col(j, e);
                if (r < m && c < n) linear_store(acc[i][j][e], bias, out, r, c, n, act, accumulate);
            }
        }
    }
}

#define LINEAR_PARAMS(T)                                                                               \
    (const T* x, u64 x_stride, const T* w, u64 w_stride, const T* bias, T* out, u64 m, u64 n, u64 k, u64 act, \
     u64 accumulate)
#define LINEAR_ARGS x, x_stride, w, w_stride, bias, out, m, n, k, act, accumulate

extern "C" __global__ void __launch_bounds__(TILE_THREADS, 1) linear_f32 LINEAR_PARAMS(float) {
    linear_simt(LINEAR_ARGS);
}
extern "C" __global__ void __launch_bounds__(MMA_THREADS, MMA_MIN_BLOCKS) linear_f16 LINEAR_PARAMS(f16) {
    linear_mma<f16>(LINEAR_ARGS);
}
extern "C" __global__ void __launch_bounds__(MMA_THREADS, MMA_MIN_BLOCKS) linear_bf16 LINEAR_PARAMS(bf16) {
    linear_mma<bf16>(LINEAR_ARGS);
}
