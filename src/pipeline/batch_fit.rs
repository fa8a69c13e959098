//! The largest batch per launch a backend can bind, found before any weight is uploaded: an
//! adapter caps each view a shader binds (wgpu: 128 MiB by WebGPU's default, 2 GiB - 1 on
//! Vulkan and DX12) and the arena buffer, and activations grow with the batch, so a batch
//! beyond them runs in launches of the largest that fits (the denoiser and the VAE decoder loop
//! over launches).
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::models::weight_source::{WeightSource, ZeroWeights};
use crate::models::ModelConfig;
use crate::tensor::DType;

/// `config`'s graph for `want` samples per launch and `want`, where `backend` can bind it
/// (`Graph::check`); else for the largest batch it can, found by bisection over graphs with
/// zero weights (never read or uploaded), with a one-line note on stderr saying why. Where not
/// even batch 1 fits, the graph for `want`: binding it gives the refusal (or auto's fallback).
pub fn fitting_graph(
    backend: &dyn Backend,
    config: &ModelConfig,
    weights: &mut dyn WeightSource,
    want: usize,
    dtype: DType,
) -> Result<(Graph, usize)> {
    let graph = config.build(weights, want, dtype)?;
    let refused = match graph.check(backend) {
        Err(refused @ Error::Backend { .. }) => refused,
        _ => return Ok((graph, want)),
    };
    let fits = |batch: usize| -> Result<bool> {
        match config.build(&mut ZeroWeights(dtype), batch, dtype)?.check(backend) {
            Ok(()) => Ok(true),
            Err(Error::Backend { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    };
    // Views grow with the batch: `fitting` fits (0: none known), `too_many` does not.
    let (mut fitting, mut too_many) = (0, want);
    while too_many - fitting > 1 {
        let mid = fitting + (too_many - fitting) / 2;
        match fits(mid)? {
            true => fitting = mid,
            false => too_many = mid,
        }
    }
    if fitting == 0 {
        return Ok((graph, want));
    }
    eprintln!("note: batch {want}: {refused}; {} runs launches of {fitting}", config.arch());
    drop(graph);
    Ok((config.build(weights, fitting, dtype)?, fitting))
}
