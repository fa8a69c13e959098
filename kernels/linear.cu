// linear: out[r, c] (+)= act(sum_i x[r x_stride + i] w[c w_stride + i] + bias[c]) for r < m,
// c < n (src/backend/ops.rs `Gemm`), with `accumulate` adding the activated value to what out
// holds. The SIMT fallback of the cuBLASLt path (src/backend/cuda/encode/linear.rs says when
// it runs). Grid (ceil(n / TILE_N), ceil(m / TILE_M)), TILE_THREADS threads.
#include "activation.cuh"
#include "tiled_gemm.cuh"

template <typename T>
__device__ void linear(const T* x, u64 x_stride, const T* w, u64 w_stride, const T* bias, T* out, u64 m, u64 n,
                       u64 k, u64 act, u64 accumulate) {
    const u64 m0 = (u64)blockIdx.y * TILE_M, n0 = (u64)blockIdx.x * TILE_N;
    float acc[4][4];
    tile_product(
        m, n, k, m0, n0, [&](u64 r, u64 i) { return to_float(x[r * x_stride + i]); },
        [&](u64 i, u64 c) { return to_float(w[c * w_stride + i]); }, acc);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const u64 r = m0 + tile_row(i), c = n0 + tile_col(j);
            if (r >= m || c >= n) continue;
            float v = acc[i][j];
            if (bias != nullptr) v += to_float(bias[c]);
            v = activate(v, act);
            T* o = out + r * n + c;
            if (accumulate) v += to_float(*o);
            *o = from_float<T>(v);
        }
    }
}

#define LINEAR(name, T)                                                                                \
    extern "C" __global__ void __launch_bounds__(TILE_THREADS, 1)                                     \
        linear_##name(const T* x, u64 x_stride, const T* w, u64 w_stride, const T* bias, T* out, u64 m, \
                      u64 n, u64 k, u64 act, u64 accumulate) {                                         \
        linear<T>(x, x_stride, w, w_stride, bias, out, m, n, k, act, accumulate);                      \
    }
FOR_EACH_FLOAT(LINEAR)
