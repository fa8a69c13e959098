//! Normalisations: layernorm and layernorm_modulate on shaders/lib/block_norm.wgsl, one
//! workgroup per row; group_norm in two passes over slices of each (sample, group).
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::{GROUP_NORM, GROUP_NORM_STATS, LAYERNORM, LAYERNORM_MODULATE};
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

/// Values per slice of a block at least: 8 per invocation of a workgroup of 256.
const SLICE_MIN: usize = 2048;
/// Slices per block at most: every normalising workgroup merges all of its block's (one per
/// invocation, then a tree), so a slice stays at least 16 times the bytes of the statistics its
/// workgroup reads (with SLICE_MIN, 8 KiB of f32 for 512 bytes), while a VAE image still gets
/// many workgroups per group: 8 per block at 512 channels and 32 x 32, 64 at 128 and 512 x 512.
const MAX_SLICES: usize = 64;

/// Two passes over slices of each (sample, group) block (shaders/lib/group_slices.wgsl), a
/// workgroup per slice: group_norm_stats writes each slice's (mean, M2) to scratch, group_norm
/// merges its block's with Chan's formula and normalises its slice. The statistics are exact
/// two-pass ones per slice and merged without cancellation, and the op gets blocks x slices
/// workgroups instead of one per block (the SD VAE's 32 per image). In runs of blocks whose x
/// and out views fit the binding limit (an image beyond it: the SD VAE decoder at 512 px), two
/// dispatches each, which reuse the scratch.
pub(super) fn group_norm(op: &GroupNorm, limits: &wgpu::Limits) -> Result<Vec<Dispatch>> {
    let dtype = elem("group_norm", &[("x", &op.x), ("gamma", &op.gamma), ("beta", &op.beta), ("out", &op.out)], &[])?;
    let blocks = op.batch * op.groups;
    let block_len = op.channels / op.groups * op.spatial;
    let slice_len = SLICE_MIN.max(block_len.div_ceil(MAX_SLICES));
    let slices = block_len.div_ceil(slice_len).max(1);
    let run = (binding_elems(limits, dtype) / block_len.max(1)).clamp(1, blocks.max(1));
    let mut dispatches = Vec::new();
    for first in (0..blocks).step_by(run) {
        let count = run.min(blocks - first);
        let (x, out) = (op.x.slice(first * block_len, count * block_len), op.out.slice(first * block_len, count * block_len));
        let stats_words = 2 * count * slices;
        let slices_of =
            |shader| Builder::new(shader, vec![("elem", dtype)]).part_of("x", &op.x).value(count).value(block_len).value(slices).value(slice_len);
        let stats = slices_of(&GROUP_NORM_STATS).view("x", &x).scratch("stats", stats_words).finish(Grid::Flat(count * slices))?;
        let normalize = slices_of(&GROUP_NORM)
            .part_of("out", &op.out)
            .float(op.eps)
            .value(op.groups)
            .value(op.spatial)
            .value(usize::from(op.silu))
            .value(first)
            .view("x", &x)
            .scratch("stats", stats_words)
            .view("gamma", &op.gamma)
            .view("beta", &op.beta)
            .view("out", &out)
            .finish(Grid::Flat(count * slices))?;
        dispatches.extend([stats, normalize]);
    }
    Ok(dispatches)
}
