// Shared by every kernel: integer types, the storage types and their conversions to and from
// f32, warp/block sums, and the macro that instantiates a kernel once per float dtype.
//
// Kernels are compiled by NVRTC with no CUDA headers (build/kernels.rs passes the .cuh files
// of kernels/ as the only headers), so bf16/f16 are plain 16-bit patterns here and converted
// with the PTX cvt instructions of ptx_ops.cuh (round to nearest even, as the `half` crate on
// the host).
// Every integer kernel argument is a u64 (src/backend/cuda/launch.rs passes u64 or f32 only).
#pragma once
#include "ptx_ops.cuh"

typedef unsigned long long u64;

// No math.h under NVRTC without headers.
#define INFINITY __int_as_float(0x7f800000)
#define QUIET_NAN __int_as_float(0x7fc00000)

struct bf16 {
    u16 bits;
};
struct f16 {
    u16 bits;
};

__device__ __forceinline__ float to_float(float v) { return v; }
// bf16 is the upper half of an f32.
__device__ __forceinline__ float to_float(bf16 v) { return __uint_as_float(((u32)v.bits) << 16); }
__device__ __forceinline__ float to_float(f16 v) { return cvt_f32_f16(v.bits); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 from_float<bf16>(float v) { return bf16{cvt_rn_bf16_f32(v)}; }
template <> __device__ __forceinline__ f16 from_float<f16>(float v) { return f16{cvt_rn_f16_f32(v)}; }

// First element handled by this thread and the step of a grid-stride loop over a flat range.
__device__ __forceinline__ u64 flat_start() { return (u64)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ u64 flat_step() { return (u64)gridDim.x * blockDim.x; }

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// Sum of `v` over the block; every thread gets the total. blockDim.x must be a multiple of 32.
// The leading barrier lets a kernel call it repeatedly (the partials of the last call are read).
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float partial[32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x / 32) ? partial[lane] : 0.0f;
    return warp_sum(v);
}

// X(suffix, type) for every float storage type; kernels are named <op>_<suffix>.
#define FOR_EACH_FLOAT(X) X(f32, float) X(f16, f16) X(bf16, bf16)
