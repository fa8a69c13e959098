// The tiled product c[r, col] = sum_k x[r, k] w[col, k] (x W^T) shared by gemm, tmsa_qkv,
// skip_concat_linear, conv2d and wide attention's two products; after lib/flat_index.wgsl.
// The including shader defines:
//   Params with fields m, n, k (the product is [m, n], summed over k), bound as `p`;
//   fn load_x(r: u32, k: u32) -> f32 and fn load_w(col: u32, k: u32) -> f32, called in range;
//   fn store(r: u32, col: u32, acc: f32), the epilogue, called in range.
//   const W_COLUMNS_FASTEST: bool, true where neighbouring columns of w lie together in memory
//   and neighbouring k do not (conv2d's im2col gather): w's tile is then loaded along columns,
//   one column per invocation, the same one for the whole dispatch (load_w may keep state about
//   its column in private variables: conv2d.wgsl does).
// A workgroup of 8x8 invocations computes a 64x64 tile of c; invocation (tx, ty) owns the 8x8
// outputs at rows 4 ty + i and 32 + 4 ty + i, columns 4 tx + j and 32 + 4 tx + j (i, j < 4):
// four vec4 loads of workgroup memory per k feed 64 multiply-adds (a 4x4 register tile took
// two per 16). The halves 32 apart keep the 8 invocations a 16-byte load serves together on 8
// consecutive vec4s (no bank conflicts), where 8 adjacent rows would put them 32 bytes apart.
// K advances TILE_K at a time through two buffers of workgroup memory (16 KiB in all, WebGPU's
// default limit): the tile after the current one is staged into the other buffer before the
// current one is multiplied, so one barrier per step separates them (a single buffer needs
// two) and a warp's global loads are in flight while the others multiply. Each buffer holds,
// per k, the tile's 64 rows of x and 64 columns of w as vec4s. Tiles are loaded along k, so
// neighbouring invocations read neighbouring elements; each stages 4 rows of one k as one
// vec4 store, swizzled (below) so that a store is free of bank conflicts. The tiles of c run
// row by row, columns fastest, in a flat run of workgroups (split over x and y when one
// dimension cannot hold them: `tiles` in src/backend/wgpu/lower/linear.rs).

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;
const THREADS: u32 = 64u;
// vec4s of one buffer: TILE_K rows of TILE / 4.
const BUFFER: u32 = 256u;

// Two buffers of [TILE_K][TILE / 4] vec4s: x_tile[b + kk * 16 + (q ^ (kk & 7))][j] is
// x[row0 + 4 q + j, k0 + kk] (b = 0 or BUFFER); w_tile likewise for w[col0 + 4 q + j, k0 + kk].
// The swizzle: the invocations of a warp stage consecutive kk for one q, and a 16-byte store is
// served 8 invocations at a time; without it their vec4s are 256 bytes apart, all in the same 4
// of the 32 banks (8 passes), with it the 8 land in 8 different bank quads (1 pass;
// scripts/check_shaders.sh counts them). It permutes q within its half (q < 8 or q >= 8).
var<workgroup> x_tile: array<vec4<f32>, 512>;
var<workgroup> w_tile: array<vec4<f32>, 512>;

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let tile = flat_group(wid, groups);
    let col_tiles = (p.n + TILE - 1u) / TILE;
    // Surplus workgroups of a split run load and store nothing (no early return before the
    // barriers).
    let inside = tile < col_tiles * ((p.m + TILE - 1u) / TILE);
    let steps = select(0u, (p.k + TILE_K - 1u) / TILE_K, inside);
    let row0 = tile / col_tiles * TILE;
    let col0 = tile % col_tiles * TILE;
    // acc_RC_i[j]: row 4 ty + i (+ 32 where R = 1), column 4 tx + j (+ 32 where C = 1).
    // Named variables, not an array, so that they stay in registers (compilers such as
    // llvmpipe's spill indexed arrays to memory).
    var acc_00_0 = vec4<f32>();
    var acc_00_1 = vec4<f32>();
    var acc_00_2 = vec4<f32>();
    var acc_00_3 = vec4<f32>();
    var acc_01_0 = vec4<f32>();
    var acc_01_1 = vec4<f32>();
    var acc_01_2 = vec4<f32>();
    var acc_01_3 = vec4<f32>();
    var acc_10_0 = vec4<f32>();
    var acc_10_1 = vec4<f32>();
    var acc_10_2 = vec4<f32>();
    var acc_10_3 = vec4<f32>();
    var acc_11_0 = vec4<f32>();
    var acc_11_1 = vec4<f32>();
    var acc_11_2 = vec4<f32>();
    var acc_11_3 = vec4<f32>();
    if (steps > 0u) {
        stage(0u, 0u, row0, col0, li);
    }
    workgroupBarrier();
    for (var s = 0u; s < steps; s++) {
        let cur = (s & 1u) * BUFFER;
        if (s + 1u < steps) {
            stage(BUFFER - cur, (s + 1u) * TILE_K, row0, col0, li);
        }
        for (var kk = 0u; kk < TILE_K; kk++) {
            let at = cur + kk * 16u;
            let xq = at + (lid.y ^ (kk & 7u));
            let wq = at + (lid.x ^ (kk & 7u));
            let x0 = x_tile[xq];
            let x1 = x_tile[xq + 8u];
            let w0 = w_tile[wq];
            let w1 = w_tile[wq + 8u];
            acc_00_0 += x0.x * w0;
            acc_00_1 += x0.y * w0;
            acc_00_2 += x0.z * w0;
            acc_00_3 += x0.w * w0;
            acc_01_0 += x0.x * w1;
            acc_01_1 += x0.y * w1;
            acc_01_2 += x0.z * w1;
            acc_01_3 += x0.w * w1;
            acc_10_0 += x1.x * w0;
            acc_10_1 += x1.y * w0;
            acc_10_2 += x1.z * w0;
            acc_10_3 += x1.w * w0;
            acc_11_0 += x1.x * w1;
            acc_11_1 += x1.y * w1;
            acc_11_2 += x1.z * w1;
            acc_11_3 += x1.w * w1;
        }
        // The buffer just read is the next step's to stage into.
        workgroupBarrier();
    }
    if (!inside) {
        return;
    }
    let r0 = row0 + 4u * lid.y;
    let r1 = r0 + 32u;
    let c0 = col0 + 4u * lid.x;
    let c1 = c0 + 32u;
    store_rows(r0, c0, acc_00_0, acc_00_1, acc_00_2, acc_00_3);
    store_rows(r0, c1, acc_01_0, acc_01_1, acc_01_2, acc_01_3);
    store_rows(r1, c0, acc_10_0, acc_10_1, acc_10_2, acc_10_3);
    store_rows(r1, c1, acc_11_0, acc_11_1, acc_11_2, acc_11_3);
}

// Stages the tile of x and w at k0 into the buffer at vec4 `buf`.
fn stage(buf: u32, k0: u32, row0: u32, col0: u32, li: u32) {
    for (var i = 0u; i < TILE * TILE_K / (4u * THREADS); i++) {
        let e = li + THREADS * i;
        let q = e / TILE_K;
        let kk = e % TILE_K;
        let k = k0 + kk;
        let r = row0 + 4u * q;
        let col = col0 + 4u * q;
        let at = buf + kk * 16u + (q ^ (kk & 7u));
        x_tile[at] = vec4(x_or_zero(r, k), x_or_zero(r + 1u, k), x_or_zero(r + 2u, k), x_or_zero(r + 3u, k));
        if (!W_COLUMNS_FASTEST) {
            w_tile[at] = vec4(w_or_zero(col, k), w_or_zero(col + 1u, k), w_or_zero(col + 2u, k), w_or_zero(col + 3u, k));
        }
    }
    // Columns that lie apart in w's memory and together in the product (conv2d's pixels):
    // one column per invocation, consecutive columns across a warp, so the loads follow the
    // pixels and each warp's scalar stores fill 32 consecutive words (no conflicts).
    for (var kk = 0u; W_COLUMNS_FASTEST && kk < TILE_K; kk++) {
        w_tile[buf + kk * 16u + ((li / 4u) ^ (kk & 7u))][li % 4u] = w_or_zero(col0 + li, k0 + kk);
    }
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

// The 4x4 outputs (r .. r + 3, col .. col + 3), one vec4 per row.
fn store_rows(r: u32, col: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
    store_row(r, col, a0);
    store_row(r + 1u, col, a1);
    store_row(r + 2u, col, a2);
    store_row(r + 3u, col, a3);
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
