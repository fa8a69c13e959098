//! Linear layers: gemm (bias + activation epilogue, optional accumulate), the DiffiT TMSA
//! projection (gemm plus a per-sample time term) and U-ViT's skip-concat linear (one product of
//! [x, skip] against the whole weight; the concat exists only inside the packing). Epilogues run
//! on each finished segment of the product as the GEMM hands it over (`gemm::matmul_rows`).
use super::activation;
use super::gemm::{matmul_rows, MatRef, PackedB};
use super::memory::{Src, Views};
use crate::backend::{Gemm, SkipConcatLinear, TmsaQkv, View};
use crate::error::Result;
use crate::tensor::DType;
use std::sync::Arc;

/// The weight view `w` ([n, k] at row stride `w_stride`) as the b operand of a wᵀ, packed once;
/// bf16 x bf16 products when the a operands (`a`) and w are all stored as bf16.
fn weight_t(views: &Views, op: &str, view: &View, (n, k, w_stride): (usize, usize, usize), a: &[&Src]) -> Result<Arc<PackedB>> {
    let w = views.src(op, "w", view)?;
    let bf16 = w.dtype() == DType::BF16 && a.iter().all(|a| a.dtype() == DType::BF16);
    views.packed(op, "w", view, MatRef::new(w.elems(), n, k, w_stride).t(), bf16)
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
    let w = weight_t(views, name, &op.w, (n, k, w_stride), &[&x])?;
    let out = views.dst(name, "out", &op.out)?;
    let store = |r: usize, col: usize, seg: &mut [f32]| {
        if let Some(bias) = &bias {
            add(seg, &bias[col..]);
        }
        activation::apply(op.act, seg);
        if op.accumulate {
            out.accumulate(r * n + col, seg);
        } else {
            out.store(r * n + col, seg);
        }
    };
    matmul_rows(&[MatRef::new(x.elems(), m, k, x_stride)], &w, None, &store, true);
    Ok(())
}

pub(super) fn tmsa_qkv(views: &Views, op: &TmsaQkv) -> Result<()> {
    let name = "tmsa_qkv";
    let TmsaQkv { batch, tokens, k, n, .. } = *op;
    let bias = load_bias(views, name, &op.bias)?;
    let time = views.src(name, "time", &op.time)?.values();
    let x = views.src(name, "x", &op.x)?;
    let w = weight_t(views, name, &op.w, (n, k, k), &[&x])?;
    let out = views.dst(name, "out", &op.out)?;
    let store = |r: usize, col: usize, seg: &mut [f32]| {
        if let Some(bias) = &bias {
            add(seg, &bias[col..]);
        }
        add(seg, &time[r / tokens * n + col..]);
        out.store(r * n + col, seg);
    };
    matmul_rows(&[MatRef::new(x.elems(), batch * tokens, k, k)], &w, None, &store, true);
    Ok(())
}

pub(super) fn skip_concat_linear(views: &Views, op: &SkipConcatLinear) -> Result<()> {
    let name = "skip_concat_linear";
    let SkipConcatLinear { rows, dim_x, dim_skip, n, .. } = *op;
    let bias = load_bias(views, name, &op.bias)?;
    let x = views.src(name, "x", &op.x)?;
    let skip = views.src(name, "skip", &op.skip)?;
    let w = weight_t(views, name, &op.w, (n, dim_x + dim_skip, dim_x + dim_skip), &[&x, &skip])?;
    let out = views.dst(name, "out", &op.out)?;
    let store = |r: usize, col: usize, seg: &mut [f32]| {
        if let Some(bias) = &bias {
            add(seg, &bias[col..]);
        }
        out.store(r * n + col, seg);
    };
    let a = [MatRef::new(x.elems(), rows, dim_x, dim_x), MatRef::new(skip.elems(), rows, dim_skip, dim_skip)];
    matmul_rows(&a, &w, None, &store, true);
    Ok(())
}
