//! Linear layers: gemm (bias + activation epilogue, optional accumulate), the DiffiT TMSA
//! projection (gemm plus a per-sample time term) and U-ViT's skip-concat linear (two products
//! against the two column windows of one weight, so the concat is never built).
use super::gemm::{matmul_packed, MatRef, PackedB};
use super::memory::{Src, Views};
use super::{activation, parallel};
use crate::backend::{Gemm, SkipConcatLinear, TmsaQkv, View};
use crate::error::Result;
use crate::tensor::DType;
use std::sync::Arc;

/// Rows of the product computed per sgemm call, bounding the f32 scratch to ROW_BLOCK * n.
const ROW_BLOCK: usize = 256;

/// Computes the [m, n] matrix sum_i a_i b_i block of rows by block of rows and hands each
/// row to `finish(r, row)` (in parallel), which owns the epilogue and the store.
fn linear_rows(m: usize, n: usize, terms: &[(MatRef, Arc<PackedB>)], finish: impl Fn(usize, &mut [f32]) + Send + Sync) {
    if m == 0 || n == 0 {
        return;
    }
    let mut block = vec![0.0f32; ROW_BLOCK.min(m) * n];
    for start in (0..m).step_by(ROW_BLOCK) {
        let rows = ROW_BLOCK.min(m - start);
        let block = &mut block[..rows * n];
        for (i, (a, b)) in terms.iter().enumerate() {
            matmul_packed(a.row_block(start, rows), b, block, i > 0, true);
        }
        parallel::for_each_row(block, n, |r, row| finish(start + r, row));
    }
}

/// The weight `w` ([n, k] at row stride `w_stride`, from element `window` of its view) as the b
/// operand of x wᵀ, packed once; bf16 x bf16 products when x and w are both stored as bf16.
#[allow(clippy::too_many_arguments)]
fn weight_t(
    views: &Views,
    op: &str,
    field: &str,
    view: &View,
    w: &Src,
    window: usize,
    n: usize,
    k: usize,
    w_stride: usize,
    x: &Src,
) -> Result<Arc<PackedB>> {
    let b = MatRef::new(w.elems().skip(window), n, k, w_stride).t();
    views.packed(op, field, view, window, b, x.dtype() == DType::BF16 && w.dtype() == DType::BF16)
}

fn add(row: &mut [f32], values: &[f32]) {
    row.iter_mut().zip(values).for_each(|(r, v)| *r += v);
}

/// Loads an optional bias.
fn load_bias(views: &Views, op: &str, bias: &Option<View>) -> Result<Option<Vec<f32>>> {
    let Some(view) = bias else { return Ok(None) };
    Ok(Some(views.src(op, "bias", view)?.values().into_owned()))
}

pub(super) fn gemm(views: &Views, op: &Gemm) -> Result<()> {
    let name = "gemm";
    let Gemm { m, n, k, x_stride, w_stride, .. } = *op;
    let bias = load_bias(views, name, &op.bias)?;
    let x = views.src(name, "x", &op.x)?;
    let w = views.src(name, "w", &op.w)?;
    let out = views.dst(name, "out", &op.out)?;
    let terms = [(MatRef::new(x.elems(), m, k, x_stride), weight_t(views, name, "w", &op.w, &w, 0, n, k, w_stride, &x)?)];
    linear_rows(m, n, &terms, |r, row| {
        if let Some(bias) = &bias {
            add(row, bias);
        }
        activation::apply(op.act, row);
        if op.accumulate {
            out.accumulate(r * n, row);
        } else {
            out.store(r * n, row);
        }
    });
    Ok(())
}

pub(super) fn tmsa_qkv(views: &Views, op: &TmsaQkv) -> Result<()> {
    let name = "tmsa_qkv";
    let TmsaQkv { batch, tokens, k, n, .. } = *op;
    let rows = batch * tokens;
    let bias = load_bias(views, name, &op.bias)?;
    let time = views.src(name, "time", &op.time)?.values();
    let x = views.src(name, "x", &op.x)?;
    let w = views.src(name, "w", &op.w)?;
    let out = views.dst(name, "out", &op.out)?;
    let terms = [(MatRef::new(x.elems(), rows, k, k), weight_t(views, name, "w", &op.w, &w, 0, n, k, k, &x)?)];
    linear_rows(rows, n, &terms, |r, row| {
        if let Some(bias) = &bias {
            add(row, bias);
        }
        let b = r / tokens;
        add(row, &time[b * n..(b + 1) * n]);
        out.store(r * n, row);
    });
    Ok(())
}

pub(super) fn skip_concat_linear(views: &Views, op: &SkipConcatLinear) -> Result<()> {
    let name = "skip_concat_linear";
    let SkipConcatLinear { rows, dim_x, dim_skip, n, .. } = *op;
    let dim = dim_x + dim_skip;
    let bias = load_bias(views, name, &op.bias)?;
    let x = views.src(name, "x", &op.x)?;
    let skip = views.src(name, "skip", &op.skip)?;
    let w = views.src(name, "w", &op.w)?;
    // The two weight halves are column windows of w: [n, dim_x] at column 0 and
    // [n, dim_skip] at column dim_x, both with row stride dim_x + dim_skip.
    let terms = [
        (MatRef::new(x.elems(), rows, dim_x, dim_x), weight_t(views, name, "w", &op.w, &w, 0, n, dim_x, dim, &x)?),
        (MatRef::new(skip.elems(), rows, dim_skip, dim_skip), weight_t(views, name, "w", &op.w, &w, dim_x, n, dim_skip, dim, &skip)?),
    ];
    let out = views.dst(name, "out", &op.out)?;
    linear_rows(rows, n, &terms, |r, row| {
        if let Some(bias) = &bias {
            add(row, bias);
        }
        out.store(r * n, row);
    });
    Ok(())
}
