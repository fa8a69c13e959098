// Every inline PTX instruction the kernels use, one small device function each. Built by NVRTC
// they are the asm; built for the host emulator (DITRT_EMU, kernels/emu/cuda_emu.h) each has a
// twin in kernels/emu/runtime.cpp with the semantics of the PTX ISA: cvt.rn rounds to nearest
// even, mma.sync is warp-collective and reads its fragments through the CuTe layouts,
// ldmatrix is warp-collective (lanes 8 i .. 8 i + 7 give the rows of matrix i), cp.async is a
// copy deferred to the cp.async.wait_group that covers it.
#pragma once

typedef unsigned int u32;
typedef unsigned short u16;

#ifndef DITRT_EMU
// cvt.f32.f16: exact widening.
__device__ __forceinline__ float cvt_f32_f16(u16 h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ u16 cvt_rn_f16_f32(float v) {
    u16 r;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r) : "f"(v));
    return r;
}
__device__ __forceinline__ u16 cvt_rn_bf16_f32(float v) {
    u16 r;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(v));
    return r;
}
// cvt.rn.{f16,bf16}x2.f32 d, a, b puts a in the upper half, b in the lower.
__device__ __forceinline__ u32 cvt_rn_f16x2_f32(float lo, float hi) {
    u32 r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
__device__ __forceinline__ u32 cvt_rn_bf16x2_f32(float lo, float hi) {
    u32 r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// mma.sync m16n8k16 / m16n8k8, row.col, f32 accumulation, c += a b.
#define PTX_MMA(name, ptx_type)                                                                        \
    __device__ __forceinline__ void mma_m16n8k16_##name(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) { \
        asm("mma.sync.aligned.m16n8k16.row.col.f32." ptx_type "." ptx_type ".f32 "                      \
            "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"                           \
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                                            \
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));                            \
    }                                                                                                  \
    __device__ __forceinline__ void mma_m16n8k8_##name(float (&c)[4], u32 a0, u32 a1, u32 b0) {         \
        asm("mma.sync.aligned.m16n8k8.row.col.f32." ptx_type "." ptx_type ".f32 "                       \
            "{%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};"                                       \
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                                            \
            : "r"(a0), "r"(a1), "r"(b0));                                                               \
    }
PTX_MMA(f16, "f16")
PTX_MMA(bf16, "bf16")

// The .shared window address of a generic pointer to shared memory.
__device__ __forceinline__ u32 shared_address(const void* p) {
    u32 a;
    asm("{ .reg .u64 s; cvta.to.shared.u64 s, %1; cvt.u32.u64 %0, s; }" : "=r"(a) : "l"(p));
    return a;
}

// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{,.trans}.shared.b16: warp-collective; lane 8 i + r
// gives the 16-byte row r of matrix i; lane 4 g + t receives, per matrix, its row g, elements
// 2t and 2t + 1 (the lower one in bits 0..15), or with .trans those of column g, rows 2t, 2t + 1.
#define PTX_LDMATRIX(suffix, ptx)                                                                          __device__ __forceinline__ void ldmatrix_x1##suffix(u32 (&r)[1], const void* row) {                        asm volatile("ldmatrix.sync.aligned.m8n8.x1" ptx ".shared.b16 {%0}, [%1];"                                           : "=r"(r[0]) : "r"(shared_address(row)));                                              }                                                                                                      __device__ __forceinline__ void ldmatrix_x2##suffix(u32 (&r)[2], const void* row) {                        asm volatile("ldmatrix.sync.aligned.m8n8.x2" ptx ".shared.b16 {%0, %1}, [%2];"                                       : "=r"(r[0]), "=r"(r[1]) : "r"(shared_address(row)));                                  }                                                                                                      __device__ __forceinline__ void ldmatrix_x4##suffix(u32 (&r)[4], const void* row) {                        asm volatile("ldmatrix.sync.aligned.m8n8.x4" ptx ".shared.b16 {%0, %1, %2, %3}, [%4];"                               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(shared_address(row)));          }
PTX_LDMATRIX(, "")
PTX_LDMATRIX(_trans, ".trans")

// cp.async.cg.shared.global: 16 bytes from global to shared, asynchronously (L2 only); the
// thread's copies since its last commit_group form a group, and wait_group N returns when at
// most N of its groups are still in flight; wait_all = commit_group + wait_group 0. Other
// threads see the data after a barrier that follows the wait.
__device__ __forceinline__ void cp_async_cg_16(void* shared, const void* global) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(shared_address(shared)), "l"(global) : "memory");
}
__device__ __forceinline__ void cp_async_commit_group() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N> __device__ __forceinline__ void cp_async_wait_group() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;" ::: "memory"); }
// cvt.rna.tf32.f32: round to nearest, ties away from zero, to tf32 (an f32 whose low 13
// mantissa bits are 0).
__device__ __forceinline__ u32 cvt_rna_tf32_f32(float v) {
    u32 r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return r;
}
// mma.sync m16n8k8 row.col with tf32 inputs, f32 accumulation, c += a b.
__device__ __forceinline__ void mma_m16n8k8_tf32(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#else
float cvt_f32_f16(u16 h);
u16 cvt_rn_f16_f32(float v);
u16 cvt_rn_bf16_f32(float v);
u32 cvt_rn_f16x2_f32(float lo, float hi);
u32 cvt_rn_bf16x2_f32(float lo, float hi);
void mma_m16n8k16_f16(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1);
void mma_m16n8k16_bf16(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1);
void mma_m16n8k8_f16(float (&c)[4], u32 a0, u32 a1, u32 b0);
void mma_m16n8k8_bf16(float (&c)[4], u32 a0, u32 a1, u32 b0);
void ldmatrix_x1(u32 (&r)[1], const void* row);
void ldmatrix_x2(u32 (&r)[2], const void* row);
void ldmatrix_x4(u32 (&r)[4], const void* row);
void ldmatrix_x1_trans(u32 (&r)[1], const void* row);
void ldmatrix_x2_trans(u32 (&r)[2], const void* row);
void ldmatrix_x4_trans(u32 (&r)[4], const void* row);
void cp_async_cg_16(void* shared, const void* global);
void cp_async_commit_group();
void cp_async_wait_group_n(int n);
template <int N> inline void cp_async_wait_group() { cp_async_wait_group_n(N); }
void cp_async_wait_all();
u32 cvt_rna_tf32_f32(float v);
void mma_m16n8k8_tf32(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1);
#endif
