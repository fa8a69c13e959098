// The time term of DiffiT's TMSA projection (src/backend/ops.rs `TmsaQkv`):
//   out[b, t, :] = x[b, t, :] w^T + bias + time[b, :]
// is a GEMM accumulated (beta = 1) onto out = bias + time[b], which this kernel writes:
//   out[r, j] = time[(r / tokens) n + j] + bias[j]   (bias null: absent)
// One thread per output element, grid-stride.
#include "common.cuh"

template <typename T>
__device__ void tmsa_time_bias(const T* time, const T* bias, T* out, u64 count, u64 tokens, u64 n) {
    for (u64 e = flat_start(); e < count; e += flat_step()) {
        const u64 row = e / n, j = e % n;
        float v = to_float(time[row / tokens * n + j]);
        if (bias != nullptr) v += to_float(bias[j]);
        out[e] = from_float<T>(v);
    }
}

#define TMSA_TIME_BIAS(name, T)                                                                        \
    extern "C" __global__ void tmsa_time_bias_##name(const T* time, const T* bias, T* out, u64 count,   \
                                                     u64 tokens, u64 n) {                              \
        tmsa_time_bias<T>(time, bias, out, count, tokens, n);                                          \
    }
FOR_EACH_FLOAT(TMSA_TIME_BIAS)
