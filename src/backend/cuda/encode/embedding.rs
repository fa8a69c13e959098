//! Table lookups: class-label embedding rows (kernels/embedding.cu) and sinusoidal timestep
//! features (kernels/timestep_embedding.cu).
use super::{elem, suffix, Encoder};
use crate::backend::{Embedding, TimestepEmbedding};
use crate::error::Result;

/// Ids beyond the table give rows of NaN here; `CudaBackend::embedding` checks the ids of a
/// single launch on the host first.
pub(super) fn embedding(e: &Encoder, op: &Embedding) -> Result<()> {
    let name = "embedding";
    let dtype = elem(name, &[("table", &op.table), ("out", &op.out)], &[])?;
    let (table, ids, out) = (e.ptr(name, "table", &op.table)?, e.ptr(name, "ids", &op.ids)?, e.ptr(name, "out", &op.out)?);
    let n = op.rows * op.dim;
    let args = [table.into(), ids.into(), out.into(), n.into(), op.dim.into(), op.table_rows.into()];
    e.launch_flat(name, &format!("embedding_{}", suffix(dtype)), n, &args)
}

pub(super) fn timestep_embedding(e: &Encoder, op: &TimestepEmbedding) -> Result<()> {
    let name = "timestep_embedding";
    let (t, out) = (e.ptr(name, "t", &op.t)?, e.ptr(name, "out", &op.out)?);
    let n = op.batch * op.dim;
    let args = [t.into(), out.into(), n.into(), op.dim.into(), op.max_period.into()];
    e.launch_flat(name, &format!("timestep_embedding_{}", suffix(op.out.dtype)), n, &args)
}
