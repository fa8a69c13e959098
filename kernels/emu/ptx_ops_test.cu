// Kernels that exercise the emulated twins of kernels/ptx_ops.cuh's ldmatrix and cp.async, for
// src/backend/cuda/emulated/ptx_ops.rs, which checks them against the PTX ISA's definitions.
// Built for the emulator only (module ptx_ops_test, ptx_build/emulator.rs), one warp each.
#include "common.cuh"

struct alignas(16) Row {
    u32 w[4];
};

// Copies 32 rows of 8 u16 from `in` to shared memory; then lane l passes row
// (stride l + 3) % 32, `skew` bytes further, to ldmatrix .x`num` (1, 2 or 4), with .trans when
// `trans` is 1, and stores register i at out[4 l + i] (registers it does not receive stay 0).
extern "C" __global__ void ldmatrix_test(const u16* in, u32* out, u64 num, u64 trans, u64 stride, u64 skew) {
    __shared__ Row rows[32];
    const int lane = threadIdx.x;
    rows[lane] = ((const Row*)in)[lane];
    __syncthreads();
    const void* mine = (const char*)&rows[(stride * lane + 3) % 32] + skew;
    u32 r[4] = {0u, 0u, 0u, 0u};
    if (num == 1) {
        u32 x[1];
        trans ? ldmatrix_x1_trans(x, mine) : ldmatrix_x1(x, mine);
        r[0] = x[0];
    } else if (num == 2) {
        u32 x[2];
        trans ? ldmatrix_x2_trans(x, mine) : ldmatrix_x2(x, mine);
        r[0] = x[0], r[1] = x[1];
    } else {
        trans ? ldmatrix_x4_trans(r, mine) : ldmatrix_x4(r, mine);
    }
    for (int i = 0; i < 4; ++i) out[4 * lane + i] = r[i];
}

// Lane l fills shared a[l], b[l] with ones, copies in[l] to a[l] (group 0) and in[32 + l] to
// b[l] (group 1), and records what it sees: out[l], out[32 + l] before any wait; out[64 + l],
// out[96 + l] after wait_group 1; out[128 + l] (b) after wait_group 0; out[160 + l] (a) after
// an uncommitted copy of in[64 + l] and wait_all.
extern "C" __global__ void cp_async_test(const Row* in, Row* out) {
    __shared__ Row a[32], b[32];
    const int l = threadIdx.x;
    a[l] = b[l] = Row{{~0u, ~0u, ~0u, ~0u}};
    cp_async_cg_16(&a[l], &in[l]);
    cp_async_commit_group();
    cp_async_cg_16(&b[l], &in[32 + l]);
    cp_async_commit_group();
    out[l] = a[l];
    out[32 + l] = b[l];
    cp_async_wait_group<1>();
    out[64 + l] = a[l];
    out[96 + l] = b[l];
    cp_async_wait_group<0>();
    out[128 + l] = b[l];
    cp_async_cg_16(&a[l], &in[64 + l]);
    cp_async_wait_all();
    out[160 + l] = a[l];
}

// Lane l copies in[l] to shared a[l], waits, and (after a __syncthreads when `sync` is 1) stores
// its neighbour's a[(l + 1) % 32] at out[l]: without the barrier that read is a race.
extern "C" __global__ void cp_async_visibility_test(const Row* in, Row* out, u64 sync) {
    __shared__ Row a[32];
    const int l = threadIdx.x;
    cp_async_cg_16(&a[l], &in[l]);
    cp_async_wait_all();
    if (sync) __syncthreads();
    out[l] = a[(l + 1) % 32];
}
