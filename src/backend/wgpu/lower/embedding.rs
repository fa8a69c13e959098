//! Table lookups: class-label (and token) embedding rows and sinusoidal timestep features.
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::{EMBEDDING, TIMESTEP_EMBEDDING};
use super::{binding_elems, elem};
use crate::backend::{Embedding, TimestepEmbedding};
use crate::error::Result;

/// Significant bits kept in g_hi (shaders/timestep_embedding.wgsl): with t < 2^12, t * g_hi
/// is exact in f32.
const FREQ_HI_BITS: u32 = 12;

/// One dispatch per block of table rows that fits a binding (CLIP-L's token table is 152 MB
/// in f32), each writing the rows whose ids fall in its block.
pub(super) fn embedding(op: &Embedding, limits: &wgpu::Limits) -> Result<Vec<Dispatch>> {
    let dtype = elem("embedding", &[("table", &op.table), ("out", &op.out)], &[])?;
    let len = op.rows * op.dim;
    let block = (binding_elems(limits, dtype) / op.dim.max(1)).clamp(1, op.table_rows.max(1));
    (0..op.table_rows.max(1))
        .step_by(block)
        .map(|first| {
            let rows = block.min(op.table_rows.saturating_sub(first));
            Builder::new(&EMBEDDING, vec![("elem", dtype)])
                .part_of("table", &op.table)
                .value(len)
                .value(op.dim)
                .value(op.table_rows)
                .value(first)
                .value(rows)
                .view("table", &op.table.slice(first * op.dim, rows * op.dim))
                .view("ids", &op.ids)
                .view("out", &op.out)
                .finish(Grid::elements(len))
        })
        .collect()
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

/// g_i = f_i / (2 pi), f_i = exp(-ln(max_period) i / half), in f64 (the frequencies in turns
/// per unit of t), as pairs (g_hi, g_lo): g_hi is g_i rounded down to FREQ_HI_BITS significant
/// bits, g_lo the f32 nearest to the rest.
fn split_frequencies(half: usize, max_period: f32) -> Vec<f32> {
    let log_period = f64::from(max_period).ln();
    let dropped_bits = f32::MANTISSA_DIGITS - FREQ_HI_BITS;
    (0..half)
        .flat_map(|i| {
            let g = (-log_period * i as f64 / half as f64).exp() / std::f64::consts::TAU;
            let hi = f32::from_bits((g as f32).to_bits() >> dropped_bits << dropped_bits);
            [hi, (g - f64::from(hi)) as f32]
        })
        .collect()
}
