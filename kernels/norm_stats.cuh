// Mean and reciprocal standard deviation of n contiguous elements, computed by the whole block
// in two passes (mean, then the mean of squared deviations: no cancellation from E[x^2] -
// E[x]^2), biased variance: rstd = 1 / sqrt(var + eps). Used by layernorm, layernorm_modulate
// and group_norm.
#pragma once
#include "common.cuh"

struct NormStats {
    float mean;
    float rstd;
};

template <typename T> __device__ __forceinline__ NormStats norm_stats(const T* x, u64 n, float eps) {
    float sum = 0.0f;
    for (u64 i = threadIdx.x; i < n; i += blockDim.x) sum += to_float(x[i]);
    const float mean = block_sum(sum) / (float)n;
    float squares = 0.0f;
    for (u64 i = threadIdx.x; i < n; i += blockDim.x) {
        const float d = to_float(x[i]) - mean;
        squares += d * d;
    }
    const float var = block_sum(squares) / (float)n;
    return NormStats{mean, 1.0f / sqrtf(var + eps)};
}
