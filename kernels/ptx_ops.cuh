// Every inline PTX instruction the kernels use, one small device function each. Built by NVRTC
// they are the asm; built for the host emulator (DITRT_EMU, kernels/emu/cuda_emu.h) each has a
// twin in kernels/emu/runtime.cpp with the semantics of the PTX ISA: cvt.rn rounds to nearest
// even, mma.sync is warp-collective and reads its fragments through the CuTe layouts.
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
u32 cvt_rna_tf32_f32(float v);
void mma_m16n8k8_tf32(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1);
#endif
