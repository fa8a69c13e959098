//! Timing forward passes of a backbone with random weights (the `bench` command and the
//! criterion benches share this).
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::backend::Backend;
use crate::error::Result;
use crate::graph::{preflight, Session};
use crate::models::backbone::{ContextIo, ModelInput};
use crate::models::weight_source::{RandomWeights, ZeroWeights};
use crate::models::ModelConfig;
use crate::tensor::{DType, HostTensor};

/// One benchmark row; serialised as the `--json` output.
#[derive(Clone, Debug, Serialize)]
pub struct ForwardTiming {
    pub model: String,
    pub backend: String,
    pub dtype: String,
    pub batch: usize,
    pub iters: usize,
    pub ms_per_forward: f64,
    pub ms_min: f64,
    /// Samples per second: images, or a text encoder's prompts.
    pub images_per_s: f64,
    /// 2 x multiply-adds of the forward / median time.
    pub gflop_per_s: f64,
    pub gflop_per_forward: f64,
    pub arena_mib: f64,
    pub peak_mib: f64,
}

/// A session of `config` with random weights and random inputs for `batch` samples.
pub fn random_session(
    backend: Arc<dyn Backend>,
    config: &ModelConfig,
    batch: usize,
    dtype: DType,
    seed: u64,
) -> Result<(Session, crate::graph::ArenaPlan, usize)> {
    // A graph too large for the backend is refused before gigabytes of random weights are
    // drawn: planned first with zero weights, whose pages are never touched.
    preflight(backend.as_ref(), &config.build(&mut ZeroWeights(dtype), batch, dtype)?)?;
    // Small weights keep activations in range for every dtype.
    let graph = config.build(&mut RandomWeights::new(seed, 0.02), batch, dtype)?;
    let session = Session::new(backend, &graph)?;
    set_inputs(&session, &random_inputs(config, batch, seed))?;
    Ok((session, graph.plan.clone(), graph.peak_bytes()))
}

/// Random inputs from `seed` by input name: x uniform in [-1, 1), t in [0, 999), class ids, a
/// text context uniform in [-1, 1); a text encoder's token ids uniform over its vocabulary.
fn random_inputs(config: &ModelConfig, batch: usize, seed: u64) -> Vec<(&'static str, HostTensor)> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let g = match config.io().input {
        ModelInput::Image(g) => g,
        ModelInput::Tokens { len, vocab } => {
            let ids: Vec<u32> = (0..batch * len).map(|_| rng.random_range(0..vocab as u32)).collect();
            return vec![("input_ids", HostTensor::from_u32([batch, len], &ids))];
        }
    };
    let x: Vec<f32> = (0..batch * g.channels * g.height * g.width).map(|_| rng.random_range(-1.0..1.0)).collect();
    let t: Vec<f32> = (0..batch).map(|_| rng.random_range(0.0..999.0)).collect();
    let mut inputs = vec![("x", HostTensor::from_f32([batch, g.channels, g.height, g.width], &x)), ("t", HostTensor::from_f32([batch], &t))];
    if let Some(classes) = config.num_classes() {
        let y: Vec<u32> = (0..batch).map(|_| rng.random_range(0..classes as u32)).collect();
        inputs.push(("y", HostTensor::from_u32([batch], &y)));
    }
    if let Some(ContextIo { tokens, dim }) = config.io().context {
        let context: Vec<f32> = (0..batch * tokens * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        inputs.push(("context", HostTensor::from_f32([batch, tokens, dim], &context)));
    }
    inputs
}

/// Sets those of `inputs` the session has (the first, its main input, always).
fn set_inputs(session: &Session, inputs: &[(&'static str, HostTensor)]) -> Result<()> {
    for (i, (name, tensor)) in inputs.iter().enumerate() {
        if i == 0 || session.has_input(name) {
            session.set_input(name, tensor)?;
        }
    }
    Ok(())
}

/// Input sets the timed forwards rotate through, so no forward reads inputs the previous one
/// left in cache (weights-tools/bench_torch.py rotates the same way, so both time cold inputs).
const INPUT_SETS: usize = 4;

/// Median wall time of `iters` forwards after `warmup` untimed ones; before each timed forward
/// (untimed) the inputs switch to the next of `INPUT_SETS` random sets.
pub fn time_forward(
    backend: Arc<dyn Backend>,
    config: &ModelConfig,
    batch: usize,
    dtype: DType,
    warmup: usize,
    iters: usize,
) -> Result<ForwardTiming> {
    let name = backend.name();
    let (session, plan, peak) = random_session(backend, config, batch, dtype, 0)?;
    for _ in 0..warmup {
        session.run()?;
    }
    session.backend().synchronize()?;
    let mut times = Vec::with_capacity(iters.max(1));
    let input_sets: Vec<_> = (0..INPUT_SETS).map(|k| random_inputs(config, batch, k as u64)).collect();
    for i in 0..iters.max(1) {
        set_inputs(&session, &input_sets[i % INPUT_SETS])?;
        session.backend().synchronize()?;
        let start = Instant::now();
        session.run()?;
        session.backend().synchronize()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let gflop = 2.0 * config.macs_per_image() * batch as f64 / 1e9;
    Ok(ForwardTiming {
        model: config.describe().split(':').next().unwrap_or("").to_string(),
        backend: name,
        dtype: dtype.name().to_string(),
        batch,
        iters: times.len(),
        ms_per_forward: median,
        ms_min: times[0],
        images_per_s: batch as f64 / (median / 1e3),
        gflop_per_s: gflop / (median / 1e3),
        gflop_per_forward: gflop,
        arena_mib: plan.arena_bytes as f64 / (1 << 20) as f64,
        peak_mib: peak as f64 / (1 << 20) as f64,
    })
}
