// layernorm: out = LN(x) * gamma + beta over rows of `dim` (src/backend/ops.rs `LayerNorm`);
// gamma and beta are optional (a null pointer means absent). One block per row.
#include "norm_stats.cuh"

template <typename T>
__device__ void layernorm(const T* x, const T* gamma, const T* beta, T* out, u64 dim, float eps) {
    const u64 row = blockIdx.x;
    const T* xr = x + row * dim;
    T* yr = out + row * dim;
    const NormStats s = norm_stats(xr, dim, eps);
    for (u64 i = threadIdx.x; i < dim; i += blockDim.x) {
        float y = (to_float(xr[i]) - s.mean) * s.rstd;
        if (gamma != nullptr) y *= to_float(gamma[i]);
        if (beta != nullptr) y += to_float(beta[i]);
        yr[i] = from_float<T>(y);
    }
}

#define LAYERNORM(name, T)                                                                             \
    extern "C" __global__ void layernorm_##name(const T* x, const T* gamma, const T* beta, T* out, u64 dim, \
                                                float eps) {                                           \
        layernorm<T>(x, gamma, beta, out, dim, eps);                                                   \
    }
FOR_EACH_FLOAT(LAYERNORM)
