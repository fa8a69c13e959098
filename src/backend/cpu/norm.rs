//! Normalisations: layernorm (plain affine, and DiT's adaLN modulation) over rows, group norm
//! over (sample, group) blocks. Statistics and the normalisation itself run in f64.
use super::activation::silu;
use super::memory::{Dst, Src, Views};
use super::parallel;
use super::simd::vectorized_fn;
use crate::backend::{GroupNorm, LayerNorm, LayerNormModulate, View};
use crate::error::Result;

/// Sum of `values` (mapped by `f`) in f64, over eight interleaved partial sums (one AVX-512
/// vector) so the loop is not one long chain of dependent additions.
#[inline(always)]
fn sum_f64(values: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let mut partial = [0.0f64; 8];
    let chunks = values.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&v| f(f64::from(v))).sum();
    for chunk in chunks {
        for (p, &v) in partial.iter_mut().zip(chunk) {
            *p += f(f64::from(v));
        }
    }
    partial.iter().sum::<f64>() + tail
}

/// Replaces `x` by (x - mean) / sqrt(var + eps), biased variance; statistics in f64.
fn normalize(x: &mut [f32], eps: f32) {
    let n = x.len() as f64;
    let mean = sum_f64(x, |v| v) / n;
    let var = sum_f64(x, |v| (v - mean) * (v - mean)) / n;
    let rstd = 1.0 / (var + f64::from(eps)).sqrt();
    x.iter_mut().for_each(|v| *v = ((f64::from(*v) - mean) * rstd) as f32);
}

vectorized_fn! {
    /// One (sample, group) block of channel planes (`spatial` values each) normalised with f64
    /// statistics, then y = x̂·γ_c + β_c (and SiLU if `then_silu`): (x − mean)·rstd·γ_c in f64,
    /// rounded once to f32.
    fn normalize_group(values: &mut [f32], spatial: usize, gamma: &[f32], beta: &[f32], eps: f32, then_silu: bool) {
        let n = values.len() as f64;
        let mean = sum_f64(values, |v| v) / n;
        let var = sum_f64(values, |v| (v - mean) * (v - mean)) / n;
        let rstd = 1.0 / (var + f64::from(eps)).sqrt();
        for ((plane, &g), &b) in values.chunks_exact_mut(spatial.max(1)).zip(gamma).zip(beta) {
            let scale = rstd * f64::from(g);
            for y in plane.iter_mut() {
                let v = ((f64::from(*y) - mean) * scale) as f32 + b;
                *y = if then_silu { silu(v) } else { v };
            }
        }
    }
}

/// Loads a vector (an affine parameter).
fn load_param(views: &Views, op: &str, field: &str, view: &View) -> Result<Vec<f32>> {
    Ok(views.src(op, field, view)?.values().into_owned())
}

/// Runs `f(r, row)` on every row of `x` (normalised), then stores it to `out`.
fn for_each_normalized_row(x: Src, out: &Dst, rows: usize, dim: usize, eps: f32, f: impl Fn(usize, &mut [f32]) + Send + Sync) {
    parallel::for_each_index(
        rows,
        dim,
        || vec![0.0f32; dim],
        |row, r| {
            x.load(r * dim, row);
            normalize(row, eps);
            f(r, row);
            out.store(r * dim, row);
        },
    );
}

pub(super) fn layernorm_modulate(views: &Views, op: &LayerNormModulate) -> Result<()> {
    let name = "layernorm_modulate";
    let LayerNormModulate { batch, tokens, dim, eps, .. } = *op;
    let rows = batch * tokens;
    if let Some(residual) = &op.residual {
        super::elementwise::gate_residual(views, op, residual)?;
    }
    let shift = views.src(name, "shift", &op.shift.view)?.values();
    let scale = views.src(name, "scale", &op.scale.view)?.values();
    let x = views.src(name, "x", &op.x)?;
    let out = views.dst(name, "out", &op.out)?;
    for_each_normalized_row(x, &out, rows, dim, eps, |r, row| {
        let at = r / tokens * op.shift.stride;
        let shift = &shift[at..at + dim];
        let at = r / tokens * op.scale.stride;
        let scale = &scale[at..at + dim];
        for ((y, sh), sc) in row.iter_mut().zip(shift).zip(scale) {
            *y = *y * (1.0 + sc) + sh;
        }
    });
    Ok(())
}

pub(super) fn layernorm(views: &Views, op: &LayerNorm) -> Result<()> {
    let name = "layernorm";
    let LayerNorm { rows, dim, eps, .. } = *op;
    let gamma = op.gamma.as_ref().map(|g| load_param(views, name, "gamma", g)).transpose()?;
    let beta = op.beta.as_ref().map(|b| load_param(views, name, "beta", b)).transpose()?;
    let x = views.src(name, "x", &op.x)?;
    let out = views.dst(name, "out", &op.out)?;
    for_each_normalized_row(x, &out, rows, dim, eps, |_, row| {
        if let Some(gamma) = &gamma {
            row.iter_mut().zip(gamma).for_each(|(y, g)| *y *= g);
        }
        if let Some(beta) = &beta {
            row.iter_mut().zip(beta).for_each(|(y, b)| *y += b);
        }
    });
    Ok(())
}

pub(super) fn group_norm(views: &Views, op: &GroupNorm) -> Result<()> {
    let name = "group_norm";
    let GroupNorm { batch, channels, spatial, groups, eps, .. } = *op;
    let gamma = load_param(views, name, "gamma", &op.gamma)?;
    let beta = load_param(views, name, "beta", &op.beta)?;
    let x = views.src(name, "x", &op.x)?;
    let out = views.dst(name, "out", &op.out)?;
    // One group of one sample is a contiguous block of `per_group` channels.
    let per_group = channels / groups;
    let block = per_group * spatial;
    parallel::for_each_index(
        batch * groups,
        block,
        || vec![0.0f32; block],
        |values, i| {
            x.load(i * block, values);
            let channels = i % groups * per_group..(i % groups + 1) * per_group;
            normalize_group(values, spatial, &gamma[channels.clone()], &beta[channels], eps, op.silu);
            out.store(i * block, values);
        },
    );
    Ok(())
}
