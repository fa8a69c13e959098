//! Table lookups: sinusoidal timestep features and class-label embedding rows.
use super::check::{self, err};
use super::memory::Views;
use super::parallel;
use crate::backend::{Embedding, TimestepEmbedding};
use crate::error::Result;
use crate::tensor::DType;

pub(super) fn timestep_embedding(views: &Views, op: &TimestepEmbedding) -> Result<()> {
    let name = "timestep_embedding";
    let TimestepEmbedding { batch, dim, max_period, .. } = *op;
    check::dtype(name, "t", &op.t, DType::F32)?;
    check::float(name, "out", &op.out)?;
    check::len_eq(name, "t", &op.t, batch, "batch")?;
    check::len_eq(name, "out", &op.out, check::product(name, "batch * dim", &[batch, dim])?, "batch * dim")?;
    check::disjoint(name, ("out", &op.out), &[("t", &op.t)])?;

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
    let Embedding { rows, dim, table_rows, .. } = *op;
    check::float(name, "table", &op.table)?;
    check::dtype(name, "ids", &op.ids, DType::U32)?;
    check::float(name, "out", &op.out)?;
    check::len_eq(name, "table", &op.table, check::product(name, "table_rows * dim", &[table_rows, dim])?, "table_rows * dim")?;
    check::len_eq(name, "ids", &op.ids, rows, "rows")?;
    check::len_eq(name, "out", &op.out, check::product(name, "rows * dim", &[rows, dim])?, "rows * dim")?;
    check::disjoint(name, ("out", &op.out), &[("table", &op.table), ("ids", &op.ids)])?;

    let ids = views.src(name, "ids", &op.ids)?.ids();
    if let Some((row, id)) = ids.iter().enumerate().find(|(_, &id)| id as usize >= table_rows) {
        return Err(err(format!("{name}: id {id} at row {row} is out of range for a table of {table_rows} rows")));
    }
    let table = views.src(name, "table", &op.table)?;
    let out = views.dst(name, "out", &op.out)?;
    parallel::for_each_index(rows, dim, || vec![0.0f32; dim], |values, r| {
        table.load(ids[r] as usize * dim, values);
        out.store(r * dim, values);
    });
    Ok(())
}
