//! Elementwise glue: broadcast add, activations, and DiT's gated residual x += gate_b * y.
//! Add and unary may run in place (out == input): each chunk is loaded before it is stored.
use super::memory::{Dst, Src, Views};
use super::{activation, parallel};
use crate::backend::{Add, GatedResidual, LayerNormModulate, Unary};
use crate::error::Result;

/// Elements per task of the flat elementwise loops.
const CHUNK: usize = 4096;

/// out = f(x) over all of `x`, in parallel chunks: each chunk is loaded, `f(start, values)`
/// transforms it in place (`start`: its first element's index), and it is stored.
fn map_chunks(x: &Src, out: &Dst, len: usize, f: impl Fn(usize, &mut [f32]) + Send + Sync) {
    parallel::for_each_index(
        len.div_ceil(CHUNK),
        CHUNK,
        || vec![0.0f32; CHUNK],
        |values, c| {
            let start = c * CHUNK;
            let values = &mut values[..CHUNK.min(len - start)];
            x.load(start, values);
            f(start, values);
            out.store(start, values);
        },
    );
}

pub(super) fn add(views: &Views, op: &Add) -> Result<()> {
    let name = "add";
    let b = views.src(name, "b", &op.b)?.values();
    let a = views.src(name, "a", &op.a)?;
    let out = views.dst(name, "out", &op.out)?;
    map_chunks(&a, &out, op.a.len, |start, values| {
        let mut j = start % b.len();
        for v in values.iter_mut() {
            *v += b[j];
            j = if j + 1 == b.len() { 0 } else { j + 1 };
        }
    });
    Ok(())
}

pub(super) fn unary(views: &Views, op: &Unary) -> Result<()> {
    let name = "unary";
    let x = views.src(name, "x", &op.x)?;
    let out = views.dst(name, "out", &op.out)?;
    map_chunks(&x, &out, op.x.len, |_, values| activation::apply(op.act, values));
    Ok(())
}

/// x += gate_b * y for `op`'s x, written back in x's dtype (the first half of a
/// layernorm_modulate with a residual).
pub(super) fn gate_residual(views: &Views, op: &LayerNormModulate, residual: &GatedResidual) -> Result<()> {
    let name = "layernorm_modulate";
    let LayerNormModulate { batch, tokens, dim, .. } = *op;
    let rows = batch * tokens;
    let gate = views.src(name, "residual gate", &residual.gate.view)?.values();
    let y = views.src(name, "residual y", &residual.y)?;
    let x = views.dst(name, "x", &op.x)?;
    parallel::for_each_index(
        rows,
        dim,
        || vec![0.0f32; dim],
        |row, r| {
            y.load(r * dim, row);
            let at = r / tokens * residual.gate.stride;
            row.iter_mut().zip(&gate[at..at + dim]).for_each(|(v, g)| *v *= g);
            x.accumulate(r * dim, row);
        },
    );
    Ok(())
}
