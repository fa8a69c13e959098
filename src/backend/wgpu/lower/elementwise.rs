//! Elementwise glue, one element per invocation: add, unary, gate_residual.
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::{ADD, GATE_RESIDUAL, UNARY};
use super::{activation_code, elem};
use crate::backend::{Add, GatedResidual, LayerNormModulate, Unary};
use crate::error::Result;

pub(super) fn add(op: &Add) -> Result<Dispatch> {
    let dtype = elem("add", &[("a", &op.a), ("b", &op.b), ("out", &op.out)], &[])?;
    Builder::new(&ADD, vec![("elem", dtype)])
        .value(op.a.len)
        .value(op.b.len)
        .view("a", &op.a)
        .view("b", &op.b)
        .view("out", &op.out)
        .finish(Grid::elements(op.a.len))
}

pub(super) fn unary(op: &Unary) -> Result<Dispatch> {
    let dtype = elem("unary", &[("x", &op.x), ("out", &op.out)], &[])?;
    Builder::new(&UNARY, vec![("elem", dtype)])
        .value(op.x.len)
        .value(activation_code(op.act))
        .view("x", &op.x)
        .view("out", &op.out)
        .finish(Grid::elements(op.x.len))
}

/// x += gate_b * y for `op`'s x: the first of a layernorm_modulate's two dispatches when it
/// carries a residual (fusing them into the norm's shader is not done on wgpu).
pub(super) fn gate_residual(op: &LayerNormModulate, residual: &GatedResidual) -> Result<Dispatch> {
    let dtype = elem("layernorm_modulate", &[("x", &op.x), ("residual y", &residual.y), ("residual gate", &residual.gate.view)], &[])?;
    let len = op.batch * op.tokens * op.dim;
    Builder::new(&GATE_RESIDUAL, vec![("elem", dtype)])
        .value(len)
        .value(op.dim)
        .value(op.tokens)
        .view("x", &op.x)
        .view("residual y", &residual.y)
        .view("residual gate", &residual.gate.view)
        .value(residual.gate.stride)
        .finish(Grid::elements(len))
}
