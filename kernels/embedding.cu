// embedding: out[r, :] = table[ids[r], :] (src/backend/ops.rs `Embedding`). The backend checks
// the ids of a single launch on the host; inside a recorded graph an id >= table_rows gives a
// row of NaN instead of a read outside the table. One thread per output element, grid-stride.
#include "common.cuh"

template <typename T>
__device__ void embedding(const T* table, const u32* ids, T* out, u64 n, u64 dim, u64 table_rows) {
    for (u64 e = flat_start(); e < n; e += flat_step()) {
        const u64 id = ids[e / dim];
        out[e] = id < table_rows ? table[id * dim + e % dim] : from_float<T>(QUIET_NAN);
    }
}

#define EMBEDDING(name, T)                                                                             \
    extern "C" __global__ void embedding_##name(const T* table, const u32* ids, T* out, u64 n, u64 dim, \
                                                u64 table_rows) {                                      \
        embedding<T>(table, ids, out, n, dim, table_rows);                                             \
    }
FOR_EACH_FLOAT(EMBEDDING)
