// embedding: out[r, :] = table[ids[r], :]. An id beyond the table (checked on the host for
// single launches) gives a row of NaN, never a read outside the table. A table larger than the
// binding limit is bound in blocks of rows, one dispatch each: a dispatch writes the rows whose
// ids fall in its block (first_row .. first_row + block_rows), the last block also those beyond
// the table. One output element per invocation (lib/per_element.wgsl). Params in the order
// src/backend/wgpu/lower/embedding.rs pushes them.

alias elem = f32;

struct Params {
    len: u32, dim: u32, table_rows: u32, first_row: u32, block_rows: u32,
    table_off: u32, ids_off: u32, out_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> table: array<elem>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<elem>;

fn element(i: u32) {
    let id = ids[p.ids_off + i / p.dim];
    let end = p.first_row + p.block_rows;
    if (id < p.first_row || (id >= end && end < p.table_rows)) {
        return;
    }
    var value = bitcast<f32>(0x7fc00000u);
    if (id < end) {
        value = f32(table[p.table_off + (id - p.first_row) * p.dim + i % p.dim]);
    }
    out[p.out_off + i] = elem(value);
}
