// conv2d, stride 1, zero padding (src/backend/ops.rs `Conv2d`), as an implicit GEMM:
//   out[b, oc, y, x] = bias[oc] + sum_{ic, ky, kx} w[oc, ic, ky, kx] x[b, ic, y + ky - pad, x + kx - pad]
// is C = A B with A = w as [out_c, in_c k k], B(kk, pix) the im2col column of output pixel
// pix = (b, y, x) gathered on the fly (zero outside the image), never materialised. On tensor
// cores (mma_gemm.cuh: f16/bf16 as stored, f32 as 3xTF32); conv2d_k1_* / conv2d_k3_* take the
// kernel size as a constant (the im2col index split is a multiply), conv2d_<dtype> any other.
// Grid (ceil(batch oh ow / MMA_BN), ceil(out_c / MMA_BM)), MMA_THREADS threads.
#include "mma_gemm.cuh"

// KS: the kernel size, or 0 for `kernel` at run time. k = (ic KS + ky) KS + kx is split in 32
// bits for KS != 0 (a multiply by a constant; the encoder takes these only for in_c KS^2 <=
// 2^32), in 64 for KS = 0.
template <typename T, int KS>
__device__ void conv2d(const T* x, const T* w, const T* bias, T* out, u64 batch, u64 in_c, u64 out_c, u64 height,
                       u64 width, u64 kernel, u64 pad) {
    const u64 ks = KS != 0 ? KS : kernel, taps = ks * ks;
    const u64 oh = height + 2 * pad - ks + 1, ow = width + 2 * pad - ks + 1;
    const u64 plane = oh * ow, pixels = batch * plane, k_len = in_c * taps;
    const u64 m0 = (u64)blockIdx.y * MMA_BM, n0 = (u64)blockIdx.x * MMA_BN;
    // This thread's im2col row (mma_b_row): its pixel's top-left input tap, relative to the
    // sample's first channel.
    const u64 pix = n0 + mma_b_row(), p = pix < pixels ? pix : 0;
    const u64 pb = p / plane, py = p % plane / ow, px = p % ow;
    const long long y0 = (long long)py - (long long)pad, x0 = (long long)px - (long long)pad;
    const T* xb = x + pb * in_c * height * width;
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
        return value_bits(xb[(ic * height + (u64)iy) * width + (u64)ix]);
    };
    float acc[2][4][4];
    mma_tile_product<T, false>(
        k_len, [&](int r, u64 k) { return m0 + r < out_c ? row_word(w + (m0 + r) * k_len, k, k_len) : 0u; },
        [&](int, u64 k) { return MmaWord<T>::VALUES == 1 ? tap(k) : pair16(tap(k), tap(k + 1)); }, acc);
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

#define CONV2D(name, T)                                                                                \
    extern "C" __global__ void __launch_bounds__(MMA_THREADS, MmaWord<T>::MIN_BLOCKS) conv2d_##name CONV2D_PARAMS(T) { \
        conv2d<T, 0>(CONV2D_ARGS);                                                                     \
    }                                                                                                  \
    extern "C" __global__ void __launch_bounds__(MMA_THREADS, MmaWord<T>::MIN_BLOCKS) conv2d_k1_##name CONV2D_PARAMS(T) { \
        conv2d<T, 1>(CONV2D_ARGS);                                                                     \
    }                                                                                                  \
    extern "C" __global__ void __launch_bounds__(MMA_THREADS, MmaWord<T>::MIN_BLOCKS) conv2d_k3_##name CONV2D_PARAMS(T) { \
        conv2d<T, 3>(CONV2D_ARGS);                                                                     \
    }
FOR_EACH_FLOAT(CONV2D)
