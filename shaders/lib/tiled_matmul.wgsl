// The tiled product c[r, col] = sum_k x[r, k] w[col, k] (x W^T) shared by gemm, tmsa_qkv,
// skip_concat_linear and conv2d; after lib/flat_index.wgsl. The including shader defines:
//   Params with fields m, n, k (the product is [m, n], summed over k), bound as `p`;
//   fn load_x(r: u32, k: u32) -> f32 and fn load_w(col: u32, k: u32) -> f32, called in range;
//   fn store(r: u32, col: u32, acc: f32), the epilogue, called in range.
//   const W_COLUMNS_FASTEST: bool, true where neighbouring columns of w lie together in memory
//   and neighbouring k do not (conv2d's im2col gather): w's tile is then loaded along columns.
// A workgroup of 16x16 invocations computes a 64x64 tile of c; invocation (tx, ty) owns the
// 4x4 outputs at rows 4 ty + i and columns 4 tx + j. K advances TILE_K at a time through
// workgroup memory, where each k holds the tile's 64 rows of x and 64 columns of w as vec4s,
// so an invocation reads its 4 rows and its 4 columns with two loads per k. Tiles are loaded
// along k, so neighbouring invocations read neighbouring elements; each stages 4 rows of one k
// as one vec4 store, swizzled (below) so that a store is free of bank conflicts. The tiles of c run row by
// row, columns fastest, in a flat run of workgroups (split over x and y when one dimension
// cannot hold them: `tiles` in src/backend/wgpu/lower/linear.rs).

const TILE: u32 = 64u;
const TILE_K: u32 = 32u;
const THREADS: u32 = 256u;

// [TILE_K][TILE / 4] vec4s: x_tile[kk * 16 + (q ^ (kk & 7))][j] is x[row0 + 4 q + j, k0 + kk];
// w_tile likewise for w[col0 + 4 q + j, k0 + kk]. The swizzle: the invocations of a warp stage
// consecutive kk for one q, and a 16-byte store is served 8 invocations at a time; without it
// their vec4s are 256 bytes apart, all in the same 4 of the 32 banks (8 passes), with it the
// 8 land in 8 different bank quads (1 pass; scripts/check_shaders.sh counts them).
var<workgroup> x_tile: array<vec4<f32>, 512>;
var<workgroup> w_tile: array<vec4<f32>, 512>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let tile = flat_group(wid, groups);
    let col_tiles = (p.n + TILE - 1u) / TILE;
    // Surplus workgroups of a split run load and store nothing (no early return before the
    // barriers).
    let inside = tile < col_tiles * ((p.m + TILE - 1u) / TILE);
    let k_len = select(0u, p.k, inside);
    let row0 = tile / col_tiles * TILE;
    let col0 = tile % col_tiles * TILE;
    // acc_i[j]: row 4 ty + i, column 4 tx + j. Four variables, not an array, so that they
    // stay in registers (compilers such as llvmpipe's spill indexed arrays to memory).
    var acc_0 = vec4<f32>();
    var acc_1 = vec4<f32>();
    var acc_2 = vec4<f32>();
    var acc_3 = vec4<f32>();
    for (var k0 = 0u; k0 < k_len; k0 += TILE_K) {
        for (var i = 0u; i < TILE * TILE_K / (4u * THREADS); i++) {
            let e = li + THREADS * i;
            let q = e / TILE_K;
            let kk = e % TILE_K;
            let k = k0 + kk;
            let r = row0 + 4u * q;
            let col = col0 + 4u * q;
            let at = kk * 16u + (q ^ (kk & 7u));
            x_tile[at] = vec4(x_or_zero(r, k), x_or_zero(r + 1u, k), x_or_zero(r + 2u, k), x_or_zero(r + 3u, k));
            if (!W_COLUMNS_FASTEST) {
                w_tile[at] = vec4(w_or_zero(col, k), w_or_zero(col + 1u, k), w_or_zero(col + 2u, k), w_or_zero(col + 3u, k));
            }
        }
        // Columns that lie apart in w's memory and together in the product (conv2d's pixels):
        // one element per invocation, consecutive columns across a warp, so the loads follow
        // the pixels and each warp's scalar stores fill 32 consecutive words (no conflicts).
        for (var i = 0u; W_COLUMNS_FASTEST && i < TILE * TILE_K / THREADS; i++) {
            let e = li + THREADS * i;
            let c = e % TILE;
            let kk = e / TILE;
            w_tile[kk * 16u + ((c / 4u) ^ (kk & 7u))][c % 4u] = w_or_zero(col0 + c, k0 + kk);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let xs = x_tile[kk * 16u + (lid.y ^ (kk & 7u))];
            let ws = w_tile[kk * 16u + (lid.x ^ (kk & 7u))];
            acc_0 += xs.x * ws;
            acc_1 += xs.y * ws;
            acc_2 += xs.z * ws;
            acc_3 += xs.w * ws;
        }
        workgroupBarrier();
    }
    if (!inside) {
        return;
    }
    let r = row0 + 4u * lid.y;
    store_row(r, col0 + 4u * lid.x, acc_0);
    store_row(r + 1u, col0 + 4u * lid.x, acc_1);
    store_row(r + 2u, col0 + 4u * lid.x, acc_2);
    store_row(r + 3u, col0 + 4u * lid.x, acc_3);
}

// x[r, k] and w[col, k] inside the product, else 0 (a partial tile's padding).
fn x_or_zero(r: u32, k: u32) -> f32 {
    if (r < p.m && k < p.k) {
        return load_x(r, k);
    }
    return 0.0;
}

fn w_or_zero(col: u32, k: u32) -> f32 {
    if (col < p.n && k < p.k) {
        return load_w(col, k);
    }
    return 0.0;
}

// Outputs (r, col .. col + 3) that lie inside the product.
fn store_row(r: u32, col: u32, acc: vec4<f32>) {
    if (r >= p.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if (col + j < p.n) {
            store(r, col + j, acc[j]);
        }
    }
}
