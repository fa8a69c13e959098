// gate_residual (DiT adaLN-Zero): x += gate_b * y over n = batch * tokens * dim elements, row
// r = i / dim, sample b = r / tokens, gate_b starting at b * gate_stride
// (src/backend/ops.rs `GateResidual`). One thread per element, grid-stride.
#include "common.cuh"

template <typename T>
__device__ void gate_residual(T* x, const T* y, const T* gate, u64 n, u64 dim, u64 tokens, u64 gate_stride) {
    for (u64 i = flat_start(); i < n; i += flat_step()) {
        const u64 row = i / dim, col = i - row * dim;
        const float g = to_float(gate[row / tokens * gate_stride + col]);
        x[i] = from_float<T>(to_float(x[i]) + g * to_float(y[i]));
    }
}

#define GATE_RESIDUAL(name, T)                                                                         \
    extern "C" __global__ void gate_residual_##name(T* x, const T* y, const T* gate, u64 n, u64 dim,    \
                                                    u64 tokens, u64 gate_stride) {                      \
        gate_residual<T>(x, y, gate, n, dim, tokens, gate_stride);                                     \
    }
FOR_EACH_FLOAT(GATE_RESIDUAL)
