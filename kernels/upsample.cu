// upsample2x (nearest): x [batch, C, H, W] -> out [batch, C, 2H, 2W],
//   out[bc, y, x] = x[bc, y / 2, x / 2]
// (src/backend/ops.rs `Upsample2x`). One thread per output element, grid-stride.
#include "common.cuh"

template <typename T> __device__ void upsample2x(const T* x, T* out, u64 n, u64 height, u64 width) {
    const u64 out_w = 2 * width, out_plane = 4 * height * width;
    for (u64 e = flat_start(); e < n; e += flat_step()) {
        const u64 plane = e / out_plane, col = e % out_w, row = e % out_plane / out_w;
        out[e] = x[(plane * height + row / 2) * width + col / 2];
    }
}

#define UPSAMPLE2X(name, T)                                                                            \
    extern "C" __global__ void upsample2x_##name(const T* x, T* out, u64 n, u64 height, u64 width) {    \
        upsample2x<T>(x, out, n, height, width);                                                       \
    }
FOR_EACH_FLOAT(UPSAMPLE2X)
