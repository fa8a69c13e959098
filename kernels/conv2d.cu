// conv2d, stride 1, zero padding (src/backend/ops.rs `Conv2d`), as an implicit GEMM:
//   out[b, oc, y, x] = bias[oc] + sum_{ic, ky, kx} w[oc, ic, ky, kx] x[b, ic, y + ky - pad, x + kx - pad]
// is C = A B with A = w as [out_c, in_c k k], B(kk, pix) the im2col column of output pixel
// pix = (b, y, x) gathered on the fly (zero outside the image), never materialised.
// f16/bf16 on tensor cores (mma_gemm.cuh; conv2d_k1_* / conv2d_k3_* with the kernel size a
// constant, so the im2col index split is a multiply, conv2d_<dtype> for any other size), f32 on
// SIMT tiles (tiled_gemm.cuh). Grid (ceil(batch oh ow / 64), ceil(out_c / 64)), TILE_THREADS
// threads for f32 and MMA_THREADS for f16/bf16 (src/backend/cuda/encode/conv.rs).
#include "mma_gemm.cuh"
#include "tiled_gemm.cuh"

// Output pixel pix as (sample, row, column) of the oh x ow output plane.
struct Pixel {
    u64 b, y, x;
    __device__ Pixel(u64 pix, u64 ow, u64 plane) : b(pix / plane), y(pix % plane / ow), x(pix % ow) {}
};

__device__ void conv2d_simt(const float* x, const float* w, const float* bias, float* out, u64 batch, u64 in_c,
                           u64 out_c, u64 height, u64 width, u64 kernel, u64 pad) {
    const u64 oh = height + 2 * pad - kernel + 1, ow = width + 2 * pad - kernel + 1;
    const u64 plane = oh * ow, kk_len = in_c * kernel * kernel;
    const u64 m0 = (u64)blockIdx.y * TILE_M, n0 = (u64)blockIdx.x * TILE_N;
    float acc[4][4];
    tile_product(
        out_c, batch * plane, kk_len, m0, n0, [&](u64 oc, u64 kk) { return w[oc * kk_len + kk]; },
        [&](u64 kk, u64 pix) {
            const u64 ic = kk / (kernel * kernel), ky = kk / kernel % kernel, kx = kk % kernel;
            const Pixel p(pix, ow, plane);
            const long long iy = (long long)(p.y + ky) - (long long)pad, ix = (long long)(p.x + kx) - (long long)pad;
            if (iy < 0 || ix < 0 || iy >= (long long)height || ix >= (long long)width) return 0.0f;
            return x[((p.b * in_c + ic) * height + (u64)iy) * width + (u64)ix];
        },
        acc);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const u64 oc = m0 + tile_row(i), pix = n0 + tile_col(j);
            if (oc >= out_c || pix >= batch * plane) continue;
            const float v = acc[i][j] + (bias != nullptr ? bias[oc] : 0.0f);
            out[(pix / plane * out_c + oc) * plane + pix % plane] = v;
        }
    }
}

// KS: the kernel size, or 0 for `kernel` at run time. k = (ic KS + ky) KS + kx is split in 32
// bits for KS != 0 (a multiply by a constant; the encoder takes these only for in_c KS^2 <=
// 2^32), in 64 for KS = 0.
template <typename T, int KS>
__device__ void conv2d_mma(const T* x, const T* w, const T* bias, T* out, u64 batch, u64 in_c, u64 out_c, u64 height,
                           u64 width, u64 kernel, u64 pad) {
    const u64 ks = KS != 0 ? KS : kernel, taps = ks * ks;
    const u64 oh = height + 2 * pad - ks + 1, ow = width + 2 * pad - ks + 1;
    const u64 plane = oh * ow, pixels = batch * plane, k_len = in_c * taps;
    const u64 m0 = (u64)blockIdx.y * MMA_BM, n0 = (u64)blockIdx.x * MMA_BN;
    // This thread's im2col row (mma_b_row): its pixel's top-left input tap, relative to the
    // sample's first channel.
    const u64 pix = n0 + mma_b_row();
    const Pixel p(pix < pixels ? pix : 0, ow, plane);
    const long long y0 = (long long)p.y - (long long)pad, x0 = (long long)p.x - (long long)pad;
    const T* xb = x + p.b * in_c * height * width;
    auto tap = [&](u64 k) -> u32 {
        if (pix >= pixels || k >= k_len) return 0u;
        u64 ic, r;
        if (KS != 0) {
            ic = (u32)k / (u32)(KS * KS);
            r = (u32)k % (u32)(KS * KS);
        } else {
            ic = k / taps;
            r = k % taps;
        }
        const long long iy = y0 + (long long)(r / ks), ix = x0 + (long long)(r % ks);
        if (iy < 0 || ix < 0 || iy >= (long long)height || ix >= (long long)width) return 0u;
        return bits16(xb[(ic * height + (u64)iy) * width + (u64)ix]);
    };
    float acc[2][4][4];
    mma_tile_product<T, false>(
        k_len, [&](int r, u64 k) { return m0 + r < out_c ? row_pair(w + (m0 + r) * k_len, k, k_len) : 0u; },
        [&](int, u64 k) { return pair16(tap(k), tap(k + 1)); }, acc);
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const u64 oc = m0 + mma_c_row(i, e), q = n0 + mma_c_col(j, e);
                if (oc >= out_c || q >= pixels) continue;
                const float v = acc[i][j][e] + (bias != nullptr ? to_float(bias[oc]) : 0.0f);
                out[(q / plane * out_c + oc) * plane + q % plane] = from_float<T>(v);
            }
        }
    }
}

#define CONV2D_PARAMS(T)                                                                               \
    (const T* x, const T* w, const T* bias, T* out, u64 batch, u64 in_c, u64 out_c, u64 height, u64 width, \
     u64 kernel, u64 pad)
#define CONV2D_ARGS x, w, bias, out, batch, in_c, out_c, height, width, kernel, pad

extern "C" __global__ void __launch_bounds__(TILE_THREADS, 1) conv2d_f32 CONV2D_PARAMS(float) {
    conv2d_simt(CONV2D_ARGS);
}

#define CONV2D_MMA(name, T)                                                                            \
    extern "C" __global__ void __launch_bounds__(MMA_THREADS, MMA_MIN_BLOCKS) conv2d_##name CONV2D_PARAMS(T) {         \
        conv2d_mma<T, 0>(CONV2D_ARGS);                                                                 \
    }                                                                                                  \
    extern "C" __global__ void __launch_bounds__(MMA_THREADS, MMA_MIN_BLOCKS) conv2d_k1_##name CONV2D_PARAMS(T) {      \
        conv2d_mma<T, 1>(CONV2D_ARGS);                                                                 \
    }                                                                                                  \
    extern "C" __global__ void __launch_bounds__(MMA_THREADS, MMA_MIN_BLOCKS) conv2d_k3_##name CONV2D_PARAMS(T) {      \
        conv2d_mma<T, 3>(CONV2D_ARGS);                                                                 \
    }
CONV2D_MMA(f16, f16)
CONV2D_MMA(bf16, bf16)
