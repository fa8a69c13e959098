//! Normalisations on shaders/lib/block_norm.wgsl: one workgroup per block of contiguous
//! values, a row (layernorm, layernorm_modulate) or a (sample, group) (group_norm, in runs of
//! blocks within the binding limit).
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::{GROUP_NORM, LAYERNORM, LAYERNORM_MODULATE};
use super::{binding_elems, elem};
use crate::backend::{GroupNorm, LayerNorm, LayerNormModulate};
use crate::error::Result;

pub(super) fn layernorm(op: &LayerNorm) -> Result<Dispatch> {
    let dtype = elem("layernorm", &[("x", &op.x), ("out", &op.out)], &[("gamma", &op.gamma), ("beta", &op.beta)])?;
    Builder::new(&LAYERNORM, vec![("elem", dtype)])
        .value(op.rows)
        .value(op.dim)
        .float(op.eps)
        .view("x", &op.x)
        .optional("gamma", &op.gamma)
        .optional("beta", &op.beta)
        .view("out", &op.out)
        .finish(Grid::Flat(op.rows))
}

/// The norm's dispatch, after the residual's where the op carries one.
pub(super) fn layernorm_modulate(op: &LayerNormModulate) -> Result<Vec<Dispatch>> {
    let residual = op.residual.as_ref().map(|r| super::elementwise::gate_residual(op, r)).transpose()?;
    Ok(residual.into_iter().chain([normalize_modulate(op)?]).collect())
}

fn normalize_modulate(op: &LayerNormModulate) -> Result<Dispatch> {
    let views = [("x", &op.x), ("shift", &op.shift.view), ("scale", &op.scale.view), ("out", &op.out)];
    let dtype = elem("layernorm_modulate", &views, &[])?;
    let rows = op.batch * op.tokens;
    Builder::new(&LAYERNORM_MODULATE, vec![("elem", dtype)])
        .value(rows)
        .value(op.dim)
        .float(op.eps)
        .value(op.tokens)
        .view("x", &op.x)
        .view("shift", &op.shift.view)
        .value(op.shift.stride)
        .view("scale", &op.scale.view)
        .value(op.scale.stride)
        .view("out", &op.out)
        .finish(Grid::Flat(rows))
}

/// In runs of (sample, group) blocks whose x and out views fit the binding limit (an image
/// beyond it: the SD VAE decoder at 512 px), one dispatch each; every block is normalised whole,
/// so the statistics are the unsplit op's.
pub(super) fn group_norm(op: &GroupNorm, limits: &wgpu::Limits) -> Result<Vec<Dispatch>> {
    let dtype = elem("group_norm", &[("x", &op.x), ("gamma", &op.gamma), ("beta", &op.beta), ("out", &op.out)], &[])?;
    let blocks = op.batch * op.groups;
    let block_len = op.channels / op.groups * op.spatial;
    let run = (binding_elems(limits, dtype) / block_len.max(1)).clamp(1, blocks.max(1));
    let runs = (0..blocks).step_by(run).map(|first| {
        let count = run.min(blocks - first);
        Builder::new(&GROUP_NORM, vec![("elem", dtype)])
            .part_of("x", &op.x)
            .part_of("out", &op.out)
            .value(count)
            .value(block_len)
            .float(op.eps)
            .value(op.groups)
            .value(op.spatial)
            .value(usize::from(op.silu))
            .value(first)
            .view("x", &op.x.slice(first * block_len, count * block_len))
            .view("gamma", &op.gamma)
            .view("beta", &op.beta)
            .view("out", &op.out.slice(first * block_len, count * block_len))
            .finish(Grid::Flat(count))
    });
    runs.collect()
}
