// Elementwise glue (src/backend/ops.rs `Add`, `Unary`, `Copy3d`), one thread per element,
// grid-stride. add and unary may run in place (out == a, out == x): each element is read by
// the thread that writes it, before the write.
#include "activation.cuh"

// out[i] = a[i] + b[i % b_len]: b repeats over a (e.g. a position table over the batch).
template <typename T> __device__ void add(const T* a, const T* b, T* out, u64 n, u64 b_len) {
    for (u64 i = flat_start(); i < n; i += flat_step()) out[i] = from_float<T>(to_float(a[i]) + to_float(b[i % b_len]));
}

// out[i] = act(x[i]), act coded as in activation.cuh.
template <typename T> __device__ void unary(const T* x, T* out, u64 n, u64 act) {
    for (u64 i = flat_start(); i < n; i += flat_step()) out[i] = from_float<T>(activate(to_float(x[i]), act));
}

#define ELEMENTWISE(name, T)                                                                           \
    extern "C" __global__ void add_##name(const T* a, const T* b, T* out, u64 n, u64 b_len) {           \
        add<T>(a, b, out, n, b_len);                                                                   \
    }                                                                                                  \
    extern "C" __global__ void unary_##name(const T* x, T* out, u64 n, u64 act) { unary<T>(x, out, n, act); }
FOR_EACH_FLOAT(ELEMENTWISE)

// copy3d: dst[i t0 + j t1 + k t2] = src[i s0 + j s1 + k s2] for (i, j, k) < (d0, d1, d2),
// flat index e = (i d1 + j) d2 + k. `Convert` turns a source element into a destination one.
template <typename S, typename D, typename Convert>
__device__ void copy3d(const S* src, D* dst, u64 d1, u64 d2, u64 n, u64 s0, u64 s1, u64 s2, u64 t0, u64 t1,
                       u64 t2, Convert convert) {
    for (u64 e = flat_start(); e < n; e += flat_step()) {
        const u64 k = e % d2, j = e / d2 % d1, i = e / (d1 * d2);
        dst[i * t0 + j * t1 + k * t2] = convert(src[i * s0 + j * s1 + k * s2]);
    }
}

#define COPY3D_ARGS u64 d1, u64 d2, u64 n, u64 s0, u64 s1, u64 s2, u64 t0, u64 t1, u64 t2
#define COPY3D_PASS d1, d2, n, s0, s1, s2, t0, t1, t2

// Same dtype: the bits are moved unchanged (exact for every dtype, u32 ids and NaN payloads too).
#define COPY3D_RAW(name, T)                                                                            \
    extern "C" __global__ void copy3d_##name(const T* src, T* dst, COPY3D_ARGS) {                      \
        copy3d(src, dst, COPY3D_PASS, [](T v) { return v; });                                          \
    }
COPY3D_RAW(b16, u16)
COPY3D_RAW(b32, u32)

// Different float dtypes: through f32, rounded to nearest even on the way down.
#define COPY3D_CONVERT(sname, S, dname, D)                                                             \
    extern "C" __global__ void copy3d_##sname##_##dname(const S* src, D* dst, COPY3D_ARGS) {           \
        copy3d(src, dst, COPY3D_PASS, [](S v) { return from_float<D>(to_float(v)); });                 \
    }
COPY3D_CONVERT(f32, float, f16, f16)
COPY3D_CONVERT(f32, float, bf16, bf16)
COPY3D_CONVERT(f16, f16, f32, float)
COPY3D_CONVERT(f16, f16, bf16, bf16)
COPY3D_CONVERT(bf16, bf16, f32, float)
COPY3D_CONVERT(bf16, bf16, f16, f16)
