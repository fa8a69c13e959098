// layernorm_modulate (DiT adaLN): out = LN(x) * (1 + scale_b) + shift_b over rows of `dim`, LN
// without affine, sample b = row / tokens; shift_b starts at b * shift_stride, scale_b at
// b * scale_stride. With y (not null), first x += gate_b * y (gate_b at b * gate_stride), written
// back to x and normalised as written: DiT's gated residual fused into the norm that follows it
// (src/backend/ops.rs `LayerNormModulate`). One block per row.
#include "norm_stats.cuh"

template <typename T>
__device__ void layernorm_modulate(T* x, const T* y, const T* gate, const T* shift, const T* scale, T* out, u64 dim,
                                   u64 tokens, u64 gate_stride, u64 shift_stride, u64 scale_stride, float eps) {
    const u64 row = blockIdx.x;
    const u64 sample = row / tokens;
    T* xr = x + row * dim;
    if (y != nullptr) {
        const T* yr = y + row * dim;
        const T* g = gate + sample * gate_stride;
        for (u64 i = threadIdx.x; i < dim; i += blockDim.x) {
            xr[i] = from_float<T>(to_float(xr[i]) + to_float(g[i]) * to_float(yr[i]));
        }
        // The statistics read the row back as written, each element by some other thread.
        __syncthreads();
    }
    const T* sh = shift + sample * shift_stride;
    const T* sc = scale + sample * scale_stride;
    T* yr = out + row * dim;
    const NormStats s = norm_stats(xr, dim, eps);
    for (u64 i = threadIdx.x; i < dim; i += blockDim.x) {
        const float v = (to_float(xr[i]) - s.mean) * s.rstd;
        yr[i] = from_float<T>(v * (1.0f + to_float(sc[i])) + to_float(sh[i]));
    }
}

#define LAYERNORM_MODULATE(name, T)                                                                    \
    extern "C" __global__ void layernorm_modulate_##name(T* x, const T* y, const T* gate, const T* shift, \
                                                         const T* scale, T* out, u64 dim, u64 tokens,   \
                                                         u64 gate_stride, u64 shift_stride,             \
                                                         u64 scale_stride, float eps) {                 \
        layernorm_modulate<T>(x, y, gate, shift, scale, out, dim, tokens, gate_stride, shift_stride,   \
                              scale_stride, eps);                                                       \
    }
FOR_EACH_FLOAT(LAYERNORM_MODULATE)
