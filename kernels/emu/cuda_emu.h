// Lets g++ compile kernels/*.cu as host C++ for the emulator (build.rs force-includes this with
// -DDITRT_EMU). Every CUDA thread of a block is a fiber of one host thread (runtime.cpp), so
// __syncthreads is a real barrier and warp collectives exchange values between fibers;
// `__shared__` variables are static thread_local, one copy per host thread, i.e. per running
// block. The builtins are calls into runtime.cpp, which is built without the -fsanitize=thread
// instrumentation the kernels get: its hooks see every load and store of kernel code and check
// and count them (global bounds, shared races, bank conflicts, coalescing).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
// common.cuh defines its own (no math.h under NVRTC).
#undef INFINITY

struct uint3 {
    unsigned x, y, z;
};

namespace emu {
uint3 thread_idx();
uint3 block_idx();
uint3 block_dim();
uint3 grid_dim();
void syncthreads();
// __shfl_xor_sync on a 32-bit value: warp-collective over `mask` (all lanes must arrive).
unsigned shfl_xor(unsigned mask, unsigned bits, int lane_mask);
}  // namespace emu

// build.rs lists a module's kernels by preprocessing it with DITRT_EMU_SCAN.
#ifdef DITRT_EMU_SCAN
#define __global__ ditrt_emu_kernel
#else
#define __global__
#endif
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static thread_local
#define threadIdx (emu::thread_idx())
#define blockIdx (emu::block_idx())
#define blockDim (emu::block_dim())
#define gridDim (emu::grid_dim())
#define __syncthreads() emu::syncthreads()

inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
inline float __uint_as_float(unsigned u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline unsigned __float_as_uint(float f) {
    unsigned u;
    std::memcpy(&u, &f, 4);
    return u;
}
inline float __shfl_xor_sync(unsigned mask, float v, int lane_mask) {
    unsigned bits;
    std::memcpy(&bits, &v, 4);
    return __uint_as_float(emu::shfl_xor(mask, bits, lane_mask));
}
// Phi(x) = erfc(-x / sqrt 2) / 2 (CUDA's normcdff).
inline float normcdff(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }
