// linear: out[r, c] (+)= act(sum_i x[r x_stride + i] w[c w_stride + i] + bias[c]) for r < m,
// c < n (src/backend/ops.rs `Gemm`), with `accumulate` adding the activated value to what out
// holds. The fallback of the cuBLASLt path (src/backend/cuda/encode/linear.rs says when it
// runs), on tensor cores (mma_gemm.cuh: f16/bf16 as stored, f32 as 3xTF32).
// Grid (ceil(n / MMA_BN), ceil(m / MMA_BM)), MMA_THREADS threads.
#include "activation.cuh"
#include "mma_gemm.cuh"

template <typename T>
__device__ void linear(const T* x, u64 x_stride, const T* w, u64 w_stride, const T* bias, T* out, u64 m, u64 n, u64 k,
                       u64 act, u64 accumulate) {
    const u64 m0 = (u64)blockIdx.y * MMA_BM, n0 = (u64)blockIdx.x * MMA_BN;
    float acc[2][4][4];
    mma_tile_product<T, true>(
        k, [&](int r, u64 i) { return m0 + r < m ? row_word(x + (m0 + r) * x_stride, i, k) : 0u; },
        [&](int r, u64 i) { return n0 + r < n ? row_word(w + (n0 + r) * w_stride, i, k) : 0u; }, acc);
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const u64 r = m0 + mma_c_row(i, e), c = n0 + mma_c_col(j, e);
                if (r >= m || c >= n) continue;
                float v = acc[i][j][e];
                if (bias != nullptr) v += to_float(bias[c]);
                v = activate(v, act);
                T* o = out + r * n + c;
                if (accumulate) v += to_float(*o);
                *o = from_float<T>(v);
            }
        }
    }
}

#define LINEAR(name, T)                                                                                \
    extern "C" __global__ void __launch_bounds__(MMA_THREADS, MmaWord<T>::MIN_BLOCKS)                          \
        linear_##name(const T* x, u64 x_stride, const T* w, u64 w_stride, const T* bias, T* out, u64 m, \
                      u64 n, u64 k, u64 act, u64 accumulate) {                                         \
        linear<T>(x, x_stride, w, w_stride, bias, out, m, n, k, act, accumulate);                      \
    }
FOR_EACH_FLOAT(LINEAR)
