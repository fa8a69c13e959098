// timestep_embedding: out[b] = [cos(t_b f_i) for i < half, sin(t_b f_i) for i < half, 0 if dim
// is odd], half = dim / 2, f_i = exp(-ln(max_period) i / half) (src/backend/ops.rs
// `TimestepEmbedding`). The angle t f reaches ~1e3 rad, where f32 rounding alone costs ~6e-5;
// like the CPU reference, f_i, the angle, cos and sin are all computed in f64 (a few thousand
// elements per step). One thread per output element, grid-stride.
#include "common.cuh"

template <typename T>
__device__ void timestep_embedding(const float* t, T* out, u64 n, u64 dim, float max_period) {
    const u64 half = dim / 2;
    const double log_period = log((double)max_period);
    for (u64 e = flat_start(); e < n; e += flat_step()) {
        const u64 col = e % dim;
        double value = 0.0;
        if (col < 2 * half) {
            const u64 i = col % half;
            const double freq = exp(-log_period * (double)i / (double)half);
            const double angle = (double)t[e / dim] * freq;
            value = col < half ? cos(angle) : sin(angle);
        }
        out[e] = from_float<T>((float)value);
    }
}

#define TIMESTEP_EMBEDDING(name, T)                                                                    \
    extern "C" __global__ void timestep_embedding_##name(const float* t, T* out, u64 n, u64 dim,        \
                                                         float max_period) {                           \
        timestep_embedding<T>(t, out, n, dim, max_period);                                             \
    }
FOR_EACH_FLOAT(TIMESTEP_EMBEDDING)
