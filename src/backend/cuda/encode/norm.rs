//! Normalisations, one block per normalised group (kernels/layernorm.cu,
//! layernorm_modulate.cu with DiT's gated residual fused in, group_norm.cu; statistics in
//! kernels/norm_stats.cuh).
use super::{elem, suffix, Encoder};
use crate::backend::{GroupNorm, LayerNorm, LayerNormModulate};
use crate::error::Result;

/// Threads for a block that reduces `len` elements: whole warps, at most 256.
fn block_threads(len: usize) -> usize {
    len.next_multiple_of(32).clamp(32, 256)
}

pub(super) fn layernorm(e: &Encoder, op: &LayerNorm) -> Result<()> {
    let name = "layernorm";
    let dtype = elem(name, &[("x", &op.x), ("out", &op.out)], &[("gamma", &op.gamma), ("beta", &op.beta)])?;
    if op.rows == 0 || op.dim == 0 {
        return Ok(());
    }
    let (x, out) = (e.ptr(name, "x", &op.x)?, e.ptr(name, "out", &op.out)?);
    let (gamma, beta) = (e.optional(name, "gamma", &op.gamma)?, e.optional(name, "beta", &op.beta)?);
    let args = [x.into(), gamma.into(), beta.into(), out.into(), op.dim.into(), op.eps.into()];
    e.launch(name, &format!("layernorm_{}", suffix(dtype)), [op.rows, 1, 1], block_threads(op.dim), &args)
}

pub(super) fn layernorm_modulate(e: &Encoder, op: &LayerNormModulate) -> Result<()> {
    let name = "layernorm_modulate";
    let (y, gate) = (op.residual.map(|r| r.y), op.residual.map(|r| r.gate.view));
    let views = [("x", &op.x), ("shift", &op.shift.view), ("scale", &op.scale.view), ("out", &op.out)];
    let dtype = elem(name, &views, &[("residual y", &y), ("residual gate", &gate)])?;
    let rows = op.batch * op.tokens;
    if rows == 0 || op.dim == 0 {
        return Ok(());
    }
    let (x, out) = (e.ptr(name, "x", &op.x)?, e.ptr(name, "out", &op.out)?);
    let (shift, scale) = (e.ptr(name, "shift", &op.shift.view)?, e.ptr(name, "scale", &op.scale.view)?);
    // No residual: y is null (the kernel then only normalises).
    let (y, gate) = (e.optional(name, "residual y", &y)?, e.optional(name, "residual gate", &gate)?);
    let gate_stride = op.residual.map_or(0, |r| r.gate.stride);
    let args = [
        x.into(),
        y.into(),
        gate.into(),
        shift.into(),
        scale.into(),
        out.into(),
        op.dim.into(),
        op.tokens.into(),
        gate_stride.into(),
        op.shift.stride.into(),
        op.scale.stride.into(),
        op.eps.into(),
    ];
    e.launch(name, &format!("layernorm_modulate_{}", suffix(dtype)), [rows, 1, 1], block_threads(op.dim), &args)
}

pub(super) fn group_norm(e: &Encoder, op: &GroupNorm) -> Result<()> {
    let name = "group_norm";
    let dtype = elem(name, &[("x", &op.x), ("gamma", &op.gamma), ("beta", &op.beta), ("out", &op.out)], &[])?;
    let per_group = op.channels / op.groups;
    let len = per_group * op.spatial;
    if op.batch == 0 || len == 0 {
        return Ok(());
    }
    let (x, out) = (e.ptr(name, "x", &op.x)?, e.ptr(name, "out", &op.out)?);
    let (gamma, beta) = (e.ptr(name, "gamma", &op.gamma)?, e.ptr(name, "beta", &op.beta)?);
    let args = [
        x.into(),
        gamma.into(),
        beta.into(),
        out.into(),
        op.groups.into(),
        per_group.into(),
        op.spatial.into(),
        op.eps.into(),
        u64::from(op.silu).into(),
    ];
    e.launch(name, &format!("group_norm_{}", suffix(dtype)), [op.batch * op.groups, 1, 1], block_threads(len), &args)
}
