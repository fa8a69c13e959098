//! Linear layers: gemm (bias + activation epilogue, optional accumulate), the DiffiT TMSA
//! projection (gemm plus a per-sample time term) and U-ViT's skip-concat linear (two products
//! against the two column windows of one weight, so the concat is never built).
use super::matmul::{matmul, MatRef};
use super::memory::Views;
use super::{activation, parallel};
use crate::backend::{Gemm, SkipConcatLinear, TmsaQkv, View};
use crate::error::Result;

/// Rows of the product computed per sgemm call, bounding the f32 scratch to ROW_BLOCK * n.
const ROW_BLOCK: usize = 256;

/// Computes the [m, n] matrix sum_i a_i b_i block of rows by block of rows and hands each
/// row to `finish(r, row)` (in parallel), which owns the epilogue and the store.
fn linear_rows(m: usize, n: usize, terms: &[(MatRef, MatRef)], finish: impl Fn(usize, &mut [f32]) + Send + Sync) {
    if m == 0 || n == 0 {
        return;
    }
    let mut block = vec![0.0f32; ROW_BLOCK.min(m) * n];
    for start in (0..m).step_by(ROW_BLOCK) {
        let rows = ROW_BLOCK.min(m - start);
        let block = &mut block[..rows * n];
        for (i, (a, b)) in terms.iter().enumerate() {
            matmul(a.row_block(start, rows), *b, block, i > 0);
        }
        parallel::for_each_row(block, n, |r, row| finish(start + r, row));
    }
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
    let x = views.src(name, "x", &op.x)?.values();
    let w = views.src(name, "w", &op.w)?.values();
    let out = views.dst(name, "out", &op.out)?;
    let terms = [(MatRef::new(&x, m, k, x_stride), MatRef::new(&w, n, k, w_stride).t())];
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
    let x = views.src(name, "x", &op.x)?.values();
    let w = views.src(name, "w", &op.w)?.values();
    let out = views.dst(name, "out", &op.out)?;
    let terms = [(MatRef::new(&x, rows, k, k), MatRef::new(&w, n, k, k).t())];
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
    let x = views.src(name, "x", &op.x)?.values();
    let skip = views.src(name, "skip", &op.skip)?.values();
    let w = views.src(name, "w", &op.w)?.values();
    // The two weight halves are column windows of w: [n, dim_x] at column 0 and
    // [n, dim_skip] at column dim_x, both with row stride dim_x + dim_skip.
    let w_skip = &w[dim_x.min(w.len())..];
    let terms = [
        (MatRef::new(&x, rows, dim_x, dim_x), MatRef::new(&w, n, dim_x, dim).t()),
        (MatRef::new(&skip, rows, dim_skip, dim_skip), MatRef::new(w_skip, n, dim_skip, dim).t()),
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
