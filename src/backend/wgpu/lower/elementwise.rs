//! Elementwise glue, one element per invocation: add, unary, gate_residual.
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::{ADD, GATE_RESIDUAL, UNARY};
use super::{activation_code, elem};
use crate::backend::{Add, GateResidual, Unary};
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

pub(super) fn gate_residual(op: &GateResidual) -> Result<Dispatch> {
    let dtype = elem("gate_residual", &[("x", &op.x), ("y", &op.y), ("gate", &op.gate.view)], &[])?;
    let len = op.batch * op.tokens * op.dim;
    Builder::new(&GATE_RESIDUAL, vec![("elem", dtype)])
        .value(len)
        .value(op.dim)
        .value(op.tokens)
        .view("x", &op.x)
        .view("y", &op.y)
        .view("gate", &op.gate.view)
        .value(op.gate.stride)
        .finish(Grid::elements(len))
}
