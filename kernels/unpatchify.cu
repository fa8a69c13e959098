// unpatchify: tokens [batch, (H/p)(W/p), p p C] -> image [batch, C, H, W], channels fastest
// within a patch (the DiT / U-ViT order):
//   out[b, c, h * p + i, w * p + j] = x[b, h * Wp + w, (i * p + j) * C + c]
// (src/backend/ops.rs `Unpatchify`). One thread per output element, grid-stride.
#include "common.cuh"

template <typename T>
__device__ void unpatchify(const T* x, T* out, u64 n, u64 channels, u64 height, u64 width, u64 p) {
    const u64 wp = width / p, patches = height / p * wp, token_dim = channels * p * p;
    for (u64 e = flat_start(); e < n; e += flat_step()) {
        const u64 col = e % width, row = e / width % height, c = e / (width * height) % channels;
        const u64 b = e / (width * height * channels);
        const u64 token = b * patches + row / p * wp + col / p;
        out[e] = x[token * token_dim + (row % p * p + col % p) * channels + c];
    }
}

#define UNPATCHIFY(name, T)                                                                            \
    extern "C" __global__ void unpatchify_##name(const T* x, T* out, u64 n, u64 channels, u64 height,   \
                                                 u64 width, u64 p) {                                   \
        unpatchify<T>(x, out, n, channels, height, width, p);                                          \
    }
FOR_EACH_FLOAT(UNPATCHIFY)
