//! The products on shaders/lib/tiled_matmul.wgsl: gemm, tmsa_qkv, skip_concat_linear, and
//! conv2d as an implicit GEMM (wide attention's two products are in wide_attention.rs). Each computes an [m, n] product in 64x64 tiles; gemm and conv2d
//! in blocks where their views exceed the binding limit.
use super::super::device::err;
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::{CONV2D, GEMM, SKIP_CONCAT_LINEAR, TMSA_QKV};
use super::{activation_code, binding_elems, elem};
use crate::backend::{Conv2d, Gemm, SkipConcatLinear, TmsaQkv};
use crate::error::Result;
use crate::tensor::DType;
use std::ops::Range;

/// Output tile edge of shaders/lib/tiled_matmul.wgsl (TILE).
const TILE: usize = 64;

/// Workgroups over an [m, n] product: one per tile, row by row, in a flat run (the shader
/// recovers its tile from its place in the run), so neither m nor n is bound by the adapter's
/// workgroups per dimension (conv2d's columns are the output pixels of every sample: 4096 tiles
/// per 512 x 512 image).
pub(super) fn tiles(m: usize, n: usize) -> Grid {
    Grid::Flat(m.div_ceil(TILE) * n.div_ceil(TILE))
}

/// out = act(x w^T + bias) in as many dispatches as the binding limit needs: blocks of rows
/// (of x and out) and of columns (rows of w), each block's views within the limit; out keeps
/// its row stride n.
pub(super) fn gemm(op: &Gemm, limits: &wgpu::Limits) -> Result<Vec<Dispatch>> {
    let dtype = elem("gemm", &[("x", &op.x), ("w", &op.w), ("out", &op.out)], &[("bias", &op.bias)])?;
    let fit = binding_elems(limits, dtype);
    let rows = block(op.m, fit / op.x_stride.max(op.n).max(1));
    let cols = block(op.n, fit / op.w_stride.max(1));
    let mut pieces = Vec::new();
    for r0 in (0..op.m).step_by(rows) {
        for c0 in (0..op.n).step_by(cols) {
            pieces.push(gemm_block(op, dtype, r0..op.m.min(r0 + rows), c0..op.n.min(c0 + cols))?);
        }
    }
    Ok(pieces)
}

/// How many of `len` rows (or columns) one dispatch takes when `fit` fit in a binding: all when
/// they fit, else the most that do in whole tiles where a tile fits, and at least one (a single
/// one too large is refused when bound).
pub(super) fn block(len: usize, fit: usize) -> usize {
    match fit {
        _ if len <= fit => len.max(1),
        _ if fit >= TILE => fit / TILE * TILE,
        _ => fit.max(1),
    }
}

/// The dispatch of out[rows, cols].
fn gemm_block(op: &Gemm, dtype: DType, rows: Range<usize>, cols: Range<usize>) -> Result<Dispatch> {
    let (m, n) = (rows.len(), cols.len());
    let wholes = [("x", &op.x), ("w", &op.w), ("out", &op.out)].into_iter().chain(op.bias.as_ref().map(|b| ("bias", b)));
    wholes
        .fold(Builder::new(&GEMM, vec![("elem", dtype)]), |b, (field, whole)| b.part_of(field, whole))
        .value(m)
        .value(n)
        .value(op.k)
        .view("x", &op.x.slice(rows.start * op.x_stride, (m - 1) * op.x_stride + op.k))
        .value(op.x_stride)
        .view("w", &op.w.slice(cols.start * op.w_stride, (n - 1) * op.w_stride + op.k))
        .value(op.w_stride)
        .optional("bias", &op.bias.map(|b| b.slice(cols.start, n)))
        .view("out", &op.out.slice(rows.start * op.n + cols.start, (m - 1) * op.n + n))
        .value(op.n)
        .value(activation_code(op.act))
        .value(usize::from(op.accumulate))
        .finish(tiles(m, n))
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

/// Rows are output channels, columns the output pixels of every sample: one dispatch per run of
/// samples whose x and out fit the binding limit (all of them, usually), with the whole weight.
/// Else (one image beyond it: the SD VAE decoder at 512 px in f32, or a weight beyond it) per
/// sample, in blocks of output channels (rows of out and weight) and of input channels (planes
/// of x), each within the limit; a block of input channels after the first adds its partial
/// sums to out (in the storage dtype), and the bias comes with the first.
pub(super) fn conv2d(op: &Conv2d, limits: &wgpu::Limits) -> Result<Vec<Dispatch>> {
    let dtype = elem("conv2d", &[("x", &op.x), ("weight", &op.weight), ("out", &op.out)], &[("bias", &op.bias)])?;
    let (out_h, out_w) = (op.height + 2 * op.pad - op.kernel + 1, op.width + 2 * op.pad - op.kernel + 1);
    let fit = binding_elems(limits, dtype);
    let per_sample = (op.in_c * op.height * op.width).max(op.out_c * out_h * out_w).max(1);
    if op.weight.len <= fit && per_sample <= fit {
        let run = (fit / per_sample).clamp(1, op.batch.max(1));
        let runs = (0..op.batch.max(1)).step_by(run).map(|sample| {
            let piece = ConvBlock { batch: run.min(op.batch - sample), sample, outs: 0..op.out_c, ins: 0..op.in_c };
            conv2d_block(op, dtype, (out_h, out_w), piece)
        });
        return runs.collect();
    }
    let w_stride = op.in_c * op.kernel * op.kernel;
    let outs = block(op.out_c, (fit / (out_h * out_w).max(1)).min(fit / w_stride.max(1)));
    let ins = (fit / (op.height * op.width).max(1)).clamp(1, op.in_c.max(1));
    let mut pieces = Vec::new();
    for sample in 0..op.batch {
        for r0 in (0..op.out_c).step_by(outs) {
            for c0 in (0..op.in_c).step_by(ins) {
                let piece = ConvBlock { batch: 1, sample, outs: r0..op.out_c.min(r0 + outs), ins: c0..op.in_c.min(c0 + ins) };
                pieces.push(conv2d_block(op, dtype, (out_h, out_w), piece)?);
            }
        }
    }
    Ok(pieces)
}

/// What one conv2d dispatch computes: `batch` samples from `sample` on, output channels `outs`,
/// summed over input channels `ins`.
struct ConvBlock {
    batch: usize,
    sample: usize,
    outs: Range<usize>,
    ins: Range<usize>,
}

fn conv2d_block(op: &Conv2d, dtype: DType, (out_h, out_w): (usize, usize), b: ConvBlock) -> Result<Dispatch> {
    let (plane, out_plane, kk) = (op.height * op.width, out_h * out_w, op.kernel * op.kernel);
    let (m, in_c) = (b.outs.len(), b.ins.len());
    let w_stride = op.in_c * kk;
    let first = b.ins.start == 0;
    // The kernel size is a constant of the shader (a pipeline per size: its divisions by kernel
    // and kernel^2 become multiplies), so kernel^2 must fit its u32 arithmetic.
    let kernel =
        u32::try_from(kk).map(|_| op.kernel as u32).map_err(|_| err(format!("conv2d: kernel {} exceeds the shaders' 32-bit indexing", op.kernel)))?;
    // Elements from the first of `count` runs `stride` apart to the end of the last, `last` long.
    let span = |count: usize, stride: usize, last: usize| count.checked_sub(1).map_or(0, |n| n * stride + last);
    let wholes = [("x", &op.x), ("weight", &op.weight), ("out", &op.out)].into_iter().chain(op.bias.as_ref().map(|v| ("bias", v)));
    wholes
        .fold(Builder::new(&CONV2D, vec![("elem", dtype)]), |builder, (field, whole)| builder.part_of(field, whole))
        .constant("KERNEL", kernel)
        .value(m)
        .value(b.batch * out_plane)
        .value(in_c * kk)
        .value(op.height)
        .value(op.width)
        .value(op.pad)
        .value(out_h)
        .value(out_w)
        .view("x", &op.x.slice((b.sample * op.in_c + b.ins.start) * plane, span(b.batch, op.in_c * plane, in_c * plane)))
        .view("weight", &op.weight.slice(b.outs.start * w_stride + b.ins.start * kk, span(m, w_stride, in_c * kk)))
        .value(w_stride)
        .value(op.in_c)
        .optional("bias", &op.bias.filter(|_| first).map(|v| v.slice(b.outs.start, m)))
        .view("out", &op.out.slice((b.sample * op.out_c + b.outs.start) * out_plane, span(b.batch, op.out_c * out_plane, m * out_plane)))
        .value(op.out_c)
        .value(usize::from(!first))
        .finish(tiles(m, b.batch * out_plane))
}
