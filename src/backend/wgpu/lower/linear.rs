//! The products on shaders/lib/tiled_matmul.wgsl: gemm, tmsa_qkv, skip_concat_linear, and
//! conv2d as an implicit GEMM. Each computes one [m, n] product in 64x64 tiles.
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::{CONV2D, GEMM, SKIP_CONCAT_LINEAR, TMSA_QKV};
use super::{activation_code, elem};
use crate::backend::{Conv2d, Gemm, SkipConcatLinear, TmsaQkv};
use crate::error::Result;

/// Output tile edge of shaders/lib/tiled_matmul.wgsl (TILE).
const TILE: usize = 64;

/// Workgroups over an [m, n] product: one per tile, row by row, in a flat run (the shader
/// recovers its tile from its place in the run), so neither m nor n is bound by the adapter's
/// workgroups per dimension (conv2d's columns are the output pixels of every sample: 4096 tiles
/// per 512 x 512 image).
fn tiles(m: usize, n: usize) -> Grid {
    Grid::Flat(m.div_ceil(TILE) * n.div_ceil(TILE))
}

pub(super) fn gemm(op: &Gemm) -> Result<Dispatch> {
    let dtype = elem("gemm", &[("x", &op.x), ("w", &op.w), ("out", &op.out)], &[("bias", &op.bias)])?;
    Builder::new(&GEMM, vec![("elem", dtype)])
        .value(op.m)
        .value(op.n)
        .value(op.k)
        .view("x", &op.x)
        .value(op.x_stride)
        .view("w", &op.w)
        .value(op.w_stride)
        .optional("bias", &op.bias)
        .view("out", &op.out)
        .value(activation_code(op.act))
        .value(usize::from(op.accumulate))
        .finish(tiles(op.m, op.n))
}

pub(super) fn tmsa_qkv(op: &TmsaQkv) -> Result<Dispatch> {
    let views = [("x", &op.x), ("w", &op.w), ("time", &op.time), ("out", &op.out)];
    let dtype = elem("tmsa_qkv", &views, &[("bias", &op.bias)])?;
    let rows = op.batch * op.tokens;
    Builder::new(&TMSA_QKV, vec![("elem", dtype)])
        .value(rows)
        .value(op.n)
        .value(op.k)
        .value(op.tokens)
        .view("x", &op.x)
        .view("w", &op.w)
        .optional("bias", &op.bias)
        .view("time", &op.time)
        .view("out", &op.out)
        .finish(tiles(rows, op.n))
}

pub(super) fn skip_concat_linear(op: &SkipConcatLinear) -> Result<Dispatch> {
    let views = [("x", &op.x), ("skip", &op.skip), ("w", &op.w), ("out", &op.out)];
    let dtype = elem("skip_concat_linear", &views, &[("bias", &op.bias)])?;
    Builder::new(&SKIP_CONCAT_LINEAR, vec![("elem", dtype)])
        .value(op.rows)
        .value(op.n)
        .value(op.dim_x + op.dim_skip)
        .value(op.dim_x)
        .view("x", &op.x)
        .view("skip", &op.skip)
        .view("w", &op.w)
        .optional("bias", &op.bias)
        .view("out", &op.out)
        .finish(tiles(op.rows, op.n))
}

/// Rows are output channels, columns the output pixels of every sample.
pub(super) fn conv2d(op: &Conv2d) -> Result<Dispatch> {
    let dtype = elem("conv2d", &[("x", &op.x), ("weight", &op.weight), ("out", &op.out)], &[("bias", &op.bias)])?;
    let (out_h, out_w) = (op.height + 2 * op.pad - op.kernel + 1, op.width + 2 * op.pad - op.kernel + 1);
    let pixels = op.batch * out_h * out_w;
    Builder::new(&CONV2D, vec![("elem", dtype)])
        .value(op.out_c)
        .value(pixels)
        .value(op.in_c * op.kernel * op.kernel)
        .value(op.in_c)
        .value(op.height)
        .value(op.width)
        .value(op.kernel)
        .value(op.pad)
        .value(out_h)
        .value(out_w)
        .view("x", &op.x)
        .view("weight", &op.weight)
        .optional("bias", &op.bias)
        .view("out", &op.out)
        .finish(tiles(op.out_c, pixels))
}
