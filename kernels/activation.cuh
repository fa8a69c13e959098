// Elementwise activations in f32 (src/backend/ops.rs `Activation`). The codes are those of
// src/backend/cuda/encode/mod.rs `activation_code`.
#pragma once
#include "common.cuh"

#define ACT_NONE 0
#define ACT_GELU_TANH 1
#define ACT_GELU_ERF 2
#define ACT_SILU 3
#define ACT_QUICK_GELU 4

// sqrt(2 / pi)
#define SQRT_2_OVER_PI 0.7978845608028654f

// SiLU x sigmoid(x) = x / (1 + e^-x); for x -> -inf, x / inf = -0.
__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }

__device__ __forceinline__ float activate(float x, u64 act) {
    switch (act) {
    case ACT_GELU_TANH: {
        // 0.5 x (1 + tanh u) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
        const float u = SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
        return x / (1.0f + expf(-2.0f * u));
    }
    case ACT_GELU_ERF:
        // x Phi(x); normcdff keeps its relative accuracy in the left tail, 1 + erf does not.
        return x * normcdff(x);
    case ACT_SILU:
        return silu(x);
    case ACT_QUICK_GELU:
        // x sigmoid(1.702 x) (CLIP), written as SiLU is.
        return x / (1.0f + expf(-1.702f * x));
    default:
        return x;
    }
}
