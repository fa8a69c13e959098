// conv2d, stride 1, zero padding (src/backend/ops.rs `Conv2d`), as an implicit GEMM:
//   out[b, oc, y, x] = bias[oc] + sum_{ic, ky, kx} w[oc, ic, ky, kx] x[b, ic, y + ky - pad, x + kx - pad]
// is C = A B with A = w as [out_c, in_c k k], B(kk, pix) the im2col column of output pixel
// pix = (b, y, x) gathered on the fly (zero outside the image), never materialised.
// Grid (ceil(batch oh ow / TILE_N), ceil(out_c / TILE_M)), TILE_THREADS threads.
#include "tiled_gemm.cuh"

template <typename T>
__device__ void conv2d(const T* x, const T* w, const T* bias, T* out, u64 batch, u64 in_c, u64 out_c, u64 height,
                       u64 width, u64 kernel, u64 pad) {
    const u64 oh = height + 2 * pad - kernel + 1, ow = width + 2 * pad - kernel + 1;
    const u64 plane = oh * ow, kk_len = in_c * kernel * kernel;
    const u64 m0 = (u64)blockIdx.y * TILE_M, n0 = (u64)blockIdx.x * TILE_N;
    float acc[4][4];
    tile_product(
        out_c, batch * plane, kk_len, m0, n0, [&](u64 oc, u64 kk) { return to_float(w[oc * kk_len + kk]); },
        [&](u64 kk, u64 pix) {
            const u64 ic = kk / (kernel * kernel), ky = kk / kernel % kernel, kx = kk % kernel;
            const u64 b = pix / plane, y = pix % plane / ow, xo = pix % ow;
            const long long iy = (long long)(y + ky) - (long long)pad, ix = (long long)(xo + kx) - (long long)pad;
            if (iy < 0 || ix < 0 || iy >= (long long)height || ix >= (long long)width) return 0.0f;
            return to_float(x[((b * in_c + ic) * height + (u64)iy) * width + (u64)ix]);
        },
        acc);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const u64 oc = m0 + tile_row(i), pix = n0 + tile_col(j);
            if (oc >= out_c || pix >= batch * plane) continue;
            const float v = acc[i][j] + (bias != nullptr ? to_float(bias[oc]) : 0.0f);
            out[(pix / plane * out_c + oc) * plane + pix % plane] = from_float<T>(v);
        }
    }
}

#define CONV2D(name, T)                                                                                \
    extern "C" __global__ void __launch_bounds__(TILE_THREADS, 1)                                     \
        conv2d_##name(const T* x, const T* w, const T* bias, T* out, u64 batch, u64 in_c, u64 out_c,    \
                      u64 height, u64 width, u64 kernel, u64 pad) {                                    \
        conv2d<T>(x, w, bias, out, batch, in_c, out_c, height, width, kernel, pad);                    \
    }
FOR_EACH_FLOAT(CONV2D)
