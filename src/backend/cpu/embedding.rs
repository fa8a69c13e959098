//! Table lookups: sinusoidal timestep features and class-label embedding rows.
use super::err;
use super::memory::Views;
use super::parallel;
use crate::backend::{op_rules, Embedding, TimestepEmbedding};
use crate::error::Result;

pub(super) fn timestep_embedding(views: &Views, op: &TimestepEmbedding) -> Result<()> {
    let name = "timestep_embedding";
    let TimestepEmbedding { dim, max_period, .. } = *op;
    let t = views.src(name, "t", &op.t)?.values();
    let out = views.dst(name, "out", &op.out)?;
    // In f64: t * f reaches ~1e3 rad, where f32 rounding alone would cost ~1e-4 of accuracy.
    let half = dim / 2;
    let log_period = f64::from(max_period).ln();
    let freqs: Vec<f64> = (0..half).map(|i| (-log_period * i as f64 / half as f64).exp()).collect();
    let mut row = vec![0.0f32; dim];
    for (b, &t) in t.iter().enumerate() {
        let (cos, rest) = row.split_at_mut(half);
        let (sin, odd_column) = rest.split_at_mut(half);
        for ((c, s), f) in cos.iter_mut().zip(sin.iter_mut()).zip(&freqs) {
            let arg = f64::from(t) * f;
            (*c, *s) = (arg.cos() as f32, arg.sin() as f32);
        }
        odd_column.fill(0.0);
        out.store(b * dim, &row);
    }
    Ok(())
}

pub(super) fn embedding(views: &Views, op: &Embedding) -> Result<()> {
    let name = "embedding";
    let Embedding { rows, dim, .. } = *op;
    let ids = views.src(name, "ids", &op.ids)?.ids();
    op_rules::embedding_ids(op, ids).map_err(err)?;
    let table = views.src(name, "table", &op.table)?;
    let out = views.dst(name, "out", &op.out)?;
    parallel::for_each_index(
        rows,
        dim,
        || vec![0.0f32; dim],
        |values, r| {
            table.load(ids[r] as usize * dim, values);
            out.store(r * dim, values);
        },
    );
    Ok(())
}
