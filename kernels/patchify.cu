// patchify: image [batch, C, H, W] -> tokens [batch, (H/p)(W/p), C p p] in the order of a
// flattened conv weight [D, C, p, p]:
//   out[b, hi * Wp + wi, (c * p + i) * p + j] = x[b, c, hi * p + i, wi * p + j]
// (src/backend/ops.rs `Patchify`). One thread per output element, grid-stride.
#include "common.cuh"

template <typename T>
__device__ void patchify(const T* x, T* out, u64 n, u64 channels, u64 height, u64 width, u64 p) {
    const u64 wp = width / p, patches = height / p * wp, token_dim = channels * p * p;
    for (u64 e = flat_start(); e < n; e += flat_step()) {
        const u64 token = e / token_dim, f = e % token_dim;
        const u64 b = token / patches, hi = token % patches / wp, wi = token % wp;
        const u64 c = f / (p * p), i = f / p % p, j = f % p;
        out[e] = x[((b * channels + c) * height + hi * p + i) * width + wi * p + j];
    }
}

#define PATCHIFY(name, T)                                                                              \
    extern "C" __global__ void patchify_##name(const T* x, T* out, u64 n, u64 channels, u64 height,     \
                                               u64 width, u64 p) {                                     \
        patchify<T>(x, out, n, channels, height, width, p);                                            \
    }
FOR_EACH_FLOAT(PATCHIFY)
