//! Timing forward passes of a backbone with random weights (the `bench` command and the
//! criterion benches share this).
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::backend::{Activation, Backend, Gemm, Op};
use crate::error::Result;
use crate::graph::{preflight, GraphBuilder, Session};
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

/// Sorted wall times (ms) of `iters` runs of `session` after `warmup` untimed ones; `before`
/// runs untimed ahead of each timed run (e.g. switching inputs).
fn time_runs(session: &Session, warmup: usize, iters: usize, mut before: impl FnMut(usize) -> Result<()>) -> Result<Vec<f64>> {
    for _ in 0..warmup {
        session.run()?;
    }
    session.backend().synchronize()?;
    let mut times = Vec::with_capacity(iters.max(1));
    for i in 0..iters.max(1) {
        before(i)?;
        session.backend().synchronize()?;
        let start = Instant::now();
        session.run()?;
        session.backend().synchronize()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// The row of sorted `times` for `batch` samples of `gflop` in all.
fn timing(
    model: String,
    backend: String,
    dtype: DType,
    batch: usize,
    times: &[f64],
    gflop: f64,
    (arena_bytes, peak_bytes): (usize, usize),
) -> ForwardTiming {
    let median = times[times.len() / 2];
    let mib = |bytes: usize| bytes as f64 / (1 << 20) as f64;
    ForwardTiming {
        model,
        backend,
        dtype: dtype.name().to_string(),
        batch,
        iters: times.len(),
        ms_per_forward: median,
        ms_min: times[0],
        images_per_s: batch as f64 / (median / 1e3),
        gflop_per_s: gflop / (median / 1e3),
        gflop_per_forward: gflop,
        arena_mib: mib(arena_bytes),
        peak_mib: mib(peak_bytes),
    }
}

/// Median wall time of one n x n x n product (`Op::Gemm`, random operands): the backend's
/// matrix-multiply peak, which the backbones' GFLOP/s are read against.
pub fn time_gemm(backend: Arc<dyn Backend>, n: usize, dtype: DType, warmup: usize, iters: usize) -> Result<ForwardTiming> {
    let name = backend.name();
    let mut rng = StdRng::seed_from_u64(0);
    let mut random = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let mut g = GraphBuilder::new(dtype);
    let x = g.input("x", [n, n], dtype);
    let w = g.weight("w", HostTensor::from_f32([n, n], &random(n * n)));
    let out = g.output("out", [n, n]);
    g.push(Op::Gemm(Gemm { m: n, n, k: n, x, x_stride: n, w, w_stride: n, bias: None, out, act: Activation::None, accumulate: false }));
    let graph = g.finish()?;
    let session = Session::new(backend, &graph)?;
    session.set_input("x", &HostTensor::from_f32([n, n], &random(n * n)).into_dtype(dtype))?;
    let times = time_runs(&session, warmup, iters, |_| Ok(()))?;
    let gflop = 2.0 * (n as f64).powi(3) / 1e9;
    Ok(timing(format!("gemm {n}^3"), name, dtype, 1, &times, gflop, (graph.plan.arena_bytes, graph.peak_bytes())))
}

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
    let input_sets: Vec<_> = (0..INPUT_SETS).map(|k| random_inputs(config, batch, k as u64)).collect();
    let times = time_runs(&session, warmup, iters, |i| set_inputs(&session, &input_sets[i % INPUT_SETS]))?;
    let gflop = 2.0 * config.macs_per_image() * batch as f64 / 1e9;
    let model = config.describe().split(':').next().unwrap_or("").to_string();
    Ok(timing(model, name, dtype, batch, &times, gflop, (plan.arena_bytes, peak)))
}
