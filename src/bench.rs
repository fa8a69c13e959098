//! Timing forward passes of a backbone with random weights (the `bench` command and the
//! criterion benches share this).
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::backend::Backend;
use crate::error::Result;
use crate::graph::Session;
use crate::models::ModelConfig;
use crate::tensor::{DType, HostTensor};
use crate::weights::RandomWeights;

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
    pub images_per_s: f64,
    /// 2 x multiply-adds of the forward / median time.
    pub gflop_per_s: f64,
    pub gflop_per_forward: f64,
    pub arena_mib: f64,
    pub peak_mib: f64,
}

/// A session of `config` with random weights and random inputs for `batch` samples.
pub fn random_session(backend: Arc<dyn Backend>, config: &ModelConfig, batch: usize, dtype: DType, seed: u64) -> Result<(Session, crate::graph::ArenaPlan, usize)> {
    // Small weights keep activations in range for every dtype.
    let graph = config.build(&mut RandomWeights::new(seed, 0.02), batch, dtype)?;
    let session = Session::new(backend, &graph)?;
    set_random_inputs(&session, config, batch, seed)?;
    Ok((session, graph.plan.clone(), graph.peak_bytes()))
}

/// Sets the session's inputs from `seed`: x uniform in [-1, 1), t in [0, 999), class ids.
fn set_random_inputs(session: &Session, config: &ModelConfig, batch: usize, seed: u64) -> Result<()> {
    let g = config.input_geometry();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let x: Vec<f32> = (0..batch * g.channels * g.height * g.width).map(|_| rng.random_range(-1.0..1.0)).collect();
    let t: Vec<f32> = (0..batch).map(|_| rng.random_range(0.0..999.0)).collect();
    session.set_input("x", &HostTensor::from_f32([batch, g.channels, g.height, g.width], &x))?;
    if session.has_input("t") {
        session.set_input("t", &HostTensor::from_f32([batch], &t))?;
    }
    if let (Some(classes), true) = (config.num_classes(), session.has_input("y")) {
        let y: Vec<u32> = (0..batch).map(|_| rng.random_range(0..classes as u32)).collect();
        session.set_input("y", &HostTensor::from_u32([batch], &y))?;
    }
    Ok(())
}

/// Input sets the timed forwards rotate through, so no forward reads inputs the previous one
/// left in cache (issue "Beat PyTorch", method; weights-tools/bench_torch.py does the same).
const INPUT_SETS: u64 = 4;

/// Median wall time of `iters` forwards after `warmup` untimed ones; before each timed forward
/// (untimed) the inputs switch to the next of `INPUT_SETS` random sets.
pub fn time_forward(backend: Arc<dyn Backend>, config: &ModelConfig, batch: usize, dtype: DType, warmup: usize, iters: usize) -> Result<ForwardTiming> {
    let name = backend.name();
    let (session, plan, peak) = random_session(backend, config, batch, dtype, 0)?;
    for _ in 0..warmup {
        session.run()?;
    }
    session.backend().synchronize()?;
    let mut times = Vec::with_capacity(iters.max(1));
    for i in 0..iters.max(1) as u64 {
        set_random_inputs(&session, config, batch, i % INPUT_SETS)?;
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
