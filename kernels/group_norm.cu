// group_norm: per (sample, group) block of channels / groups contiguous channel planes of
// `spatial` elements, out = (x - mean) * rstd * gamma_c + beta_c, then SiLU if `silu` is 1
// (src/backend/ops.rs `GroupNorm`). One block per (sample, group).
#include "activation.cuh"
#include "norm_stats.cuh"

template <typename T>
__device__ void group_norm(const T* x, const T* gamma, const T* beta, T* out, u64 groups, u64 per_group,
                           u64 spatial, float eps, u64 apply_silu) {
    const u64 block = blockIdx.x;  // sample * groups + group
    const u64 len = per_group * spatial;
    const T* xb = x + block * len;
    T* yb = out + block * len;
    const u64 first_channel = block % groups * per_group;
    const NormStats s = norm_stats(xb, len, eps);
    for (u64 i = threadIdx.x; i < len; i += blockDim.x) {
        const u64 c = first_channel + i / spatial;
        float y = (to_float(xb[i]) - s.mean) * s.rstd * to_float(gamma[c]) + to_float(beta[c]);
        if (apply_silu) y = silu(y);
        yb[i] = from_float<T>(y);
    }
}

#define GROUP_NORM(name, T)                                                                            \
    extern "C" __global__ void group_norm_##name(const T* x, const T* gamma, const T* beta, T* out,      \
                                                 u64 groups, u64 per_group, u64 spatial, float eps,     \
                                                 u64 apply_silu) {                                      \
        group_norm<T>(x, gamma, beta, out, groups, per_group, spatial, eps, apply_silu);               \
    }
FOR_EACH_FLOAT(GROUP_NORM)
