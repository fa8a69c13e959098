// attention, the simple path: out = softmax(q k^T * scale + bias) v per (sample, head)
// (src/backend/ops.rs `Attention` gives the layouts), for every dtype and head_dim; the host
// takes it where attention.cu's tensor-core kernel does not apply (f32, other head dims,
// unaligned views). One warp per query row walks the keys once with an online softmax (running
// max m, running sum l, output rescaled by e^(m_old - m_new) whenever m grows).
//
// A block writes one chunk of OUT_DIMS output dims of its rows, o0 .. o0 + OUT_DIMS: lane L
// owns dims o0 + L, o0 + L + 32, ... of the accumulator (PER_LANE registers). The score
// s_j = scale q . k_j needs the whole head: its first OUT_DIMS dims of q stay in registers
// (pre-scaled), dims beyond are read from q per key, so a head wider than OUT_DIMS costs one
// score pass per output chunk and no register more. Grid (ceil(q_len / ROWS),
// heads * ceil(head_dim / OUT_DIMS), batch), 32 ROWS threads.
#include "common.cuh"

#define ROWS 4         // warps (query rows) per block
#define OUT_DIMS 256   // output dims per block, and q dims kept in registers: 8 per lane
#define PER_LANE (OUT_DIMS / 32)

template <typename T>
__device__ void attention_fallback(const T* q, const T* k, const T* v, const T* bias, T* out, u64 q_len,
                                   u64 kv_len, u64 head_dim, u64 q_stride, u64 kv_stride, u64 out_stride,
                                   float scale) {
    const int lane = threadIdx.x % 32;
    const u64 chunks = (head_dim + OUT_DIMS - 1) / OUT_DIMS;
    const u64 row = (u64)blockIdx.x * ROWS + threadIdx.x / 32, h = blockIdx.y / chunks, b = blockIdx.z;
    const u64 o0 = blockIdx.y % chunks * OUT_DIMS;
    if (row >= q_len) return;
    const u64 col0 = h * head_dim;
    const T* qr = q + (b * q_len + row) * q_stride + col0;
    float qv[PER_LANE], acc[PER_LANE];
#pragma unroll
    for (int i = 0; i < PER_LANE; ++i) {
        const u64 d = lane + 32 * i;
        qv[i] = d < head_dim ? to_float(qr[d]) * scale : 0.0f;
        acc[i] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (u64 j = 0; j < kv_len; ++j) {
        const u64 at = (b * kv_len + j) * kv_stride + col0;
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < PER_LANE; ++i) {
            const u64 d = lane + 32 * i;
            if (d < head_dim) s = fmaf(qv[i], to_float(k[at + d]), s);
        }
        float tail = 0.0f;  // q . k_j over the dims beyond the registers
        for (u64 d = OUT_DIMS + lane; d < head_dim; d += 32) tail = fmaf(to_float(qr[d]), to_float(k[at + d]), tail);
        s = warp_sum(fmaf(tail, scale, s));
        if (bias != nullptr) s += to_float(bias[(h * q_len + row) * kv_len + j]);
        const float m_new = fmaxf(m, s);
        if (m_new == -INFINITY) continue;  // every score so far is -inf: nothing to weigh yet
        const float correction = expf(m - m_new), p = expf(s - m_new);
        l = l * correction + p;
#pragma unroll
        for (int i = 0; i < PER_LANE; ++i) {
            const u64 d = o0 + lane + 32 * i;
            if (d < head_dim) acc[i] = fmaf(p, to_float(v[at + d]), acc[i] * correction);
        }
        m = m_new;
    }
    T* orow = out + (b * q_len + row) * out_stride + col0;
    const float inv = 1.0f / l;
#pragma unroll
    for (int i = 0; i < PER_LANE; ++i) {
        const u64 d = o0 + lane + 32 * i;
        if (d < head_dim) orow[d] = from_float<T>(acc[i] * inv);
    }
}

#define ATTENTION_FALLBACK(name, T)                                                                    \
    extern "C" __global__ void __launch_bounds__(32 * ROWS)                                           \
        attention_fallback_##name(const T* q, const T* k, const T* v, const T* bias, T* out, u64 q_len,  \
                                  u64 kv_len, u64 head_dim, u64 q_stride, u64 kv_stride, u64 out_stride, \
                                  float scale) {                                                       \
        attention_fallback<T>(q, k, v, bias, out, q_len, kv_len, head_dim, q_stride, kv_stride, out_stride, \
                              scale);                                                                  \
    }
FOR_EACH_FLOAT(ATTENTION_FALLBACK)
