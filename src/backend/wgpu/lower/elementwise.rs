//! Elementwise glue, one element per invocation: add (in runs within the binding limit), unary,
//! gate_residual.
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::{ADD, GATE_RESIDUAL, UNARY};
use super::{activation_code, binding_elems, elem};
use crate::backend::{Add, GatedResidual, LayerNormModulate, Unary};
use crate::error::Result;

/// In runs of elements whose views fit the binding limit (an image beyond it), one dispatch
/// each: b, repeating over a, is cut like a where it is as long, else bound whole with runs of
/// whole repeats.
pub(super) fn add(op: &Add, limits: &wgpu::Limits) -> Result<Vec<Dispatch>> {
    let dtype = elem("add", &[("a", &op.a), ("b", &op.b), ("out", &op.out)], &[])?;
    let (len, b_len) = (op.a.len, op.b.len.max(1));
    let fit = binding_elems(limits, dtype);
    let run = match (len <= fit, b_len == len) {
        (true, _) => len.max(1),
        (false, true) => fit.max(1),
        (false, false) => (fit / b_len * b_len).max(b_len),
    };
    let runs = (0..len).step_by(run).map(|first| {
        let count = run.min(len - first);
        let b = if b_len == len { op.b.slice(first, count) } else { op.b };
        Builder::new(&ADD, vec![("elem", dtype)])
            .part_of("a", &op.a)
            .part_of("b", &op.b)
            .part_of("out", &op.out)
            .value(count)
            .value(b.len)
            .view("a", &op.a.slice(first, count))
            .view("b", &b)
            .view("out", &op.out.slice(first, count))
            .finish(Grid::elements(count))
    });
    runs.collect()
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
