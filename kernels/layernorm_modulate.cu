// layernorm_modulate (DiT adaLN): out = LN(x) * (1 + scale_b) + shift_b over rows of `dim`, LN
// without affine, sample b = row / tokens; shift_b starts at b * shift_stride, scale_b at
// b * scale_stride (src/backend/ops.rs `LayerNormModulate`). One block per row.
#include "norm_stats.cuh"

template <typename T>
__device__ void layernorm_modulate(const T* x, const T* shift, const T* scale, T* out, u64 dim, u64 tokens,
                                   u64 shift_stride, u64 scale_stride, float eps) {
    const u64 row = blockIdx.x;
    const u64 sample = row / tokens;
    const T* xr = x + row * dim;
    const T* sh = shift + sample * shift_stride;
    const T* sc = scale + sample * scale_stride;
    T* yr = out + row * dim;
    const NormStats s = norm_stats(xr, dim, eps);
    for (u64 i = threadIdx.x; i < dim; i += blockDim.x) {
        const float y = (to_float(xr[i]) - s.mean) * s.rstd;
        yr[i] = from_float<T>(y * (1.0f + to_float(sc[i])) + to_float(sh[i]));
    }
}

#define LAYERNORM_MODULATE(name, T)                                                                    \
    extern "C" __global__ void layernorm_modulate_##name(const T* x, const T* shift, const T* scale, T* out, \
                                                         u64 dim, u64 tokens, u64 shift_stride,         \
                                                         u64 scale_stride, float eps) {                 \
        layernorm_modulate<T>(x, shift, scale, out, dim, tokens, shift_stride, scale_stride, eps);      \
    }
FOR_EACH_FLOAT(LAYERNORM_MODULATE)
