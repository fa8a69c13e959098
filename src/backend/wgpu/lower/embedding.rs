//! Table lookups: class-label embedding rows and sinusoidal timestep features.
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::{EMBEDDING, TIMESTEP_EMBEDDING};
use super::elem;
use crate::backend::{Embedding, TimestepEmbedding};
use crate::error::Result;

/// Significant bits kept in f_hi (shaders/timestep_embedding.wgsl): with t < 2^12, t * f_hi
/// is exact in f32.
const FREQ_HI_BITS: u32 = 12;

pub(super) fn embedding(op: &Embedding) -> Result<Dispatch> {
    let dtype = elem("embedding", &[("table", &op.table), ("out", &op.out)], &[])?;
    let len = op.rows * op.dim;
    Builder::new(&EMBEDDING, vec![("elem", dtype)])
        .value(len)
        .value(op.dim)
        .value(op.table_rows)
        .view("table", &op.table)
        .view("ids", &op.ids)
        .view("out", &op.out)
        .finish(Grid::elements(len))
}

pub(super) fn timestep_embedding(op: &TimestepEmbedding) -> Result<Dispatch> {
    let dtype = elem("timestep_embedding", &[("out", &op.out)], &[])?;
    let half = op.dim / 2;
    let len = op.batch * op.dim;
    Builder::new(&TIMESTEP_EMBEDDING, vec![("elem", dtype)])
        .value(len)
        .value(op.dim)
        .value(half)
        .view("t", &op.t)
        .data("freqs", split_frequencies(half, op.max_period))
        .view("out", &op.out)
        .finish(Grid::elements(len))
}

/// f_i = exp(-ln(max_period) i / half) in f64, as pairs (f_hi, f_lo): f_hi is f_i rounded
/// down to FREQ_HI_BITS significant bits, f_lo the f32 nearest to the rest.
fn split_frequencies(half: usize, max_period: f32) -> Vec<f32> {
    let log_period = f64::from(max_period).ln();
    let dropped_bits = f32::MANTISSA_DIGITS - FREQ_HI_BITS;
    (0..half)
        .flat_map(|i| {
            let f = (-log_period * i as f64 / half as f64).exp();
            let hi = f32::from_bits((f as f32).to_bits() >> dropped_bits << dropped_bits);
            [hi, (f - f64::from(hi)) as f32]
        })
        .collect()
}
