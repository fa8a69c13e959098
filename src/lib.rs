//! ditrt: an inference engine for the transformer backbones of diffusion models.
//!
//! Layers, bottom up; a module imports only from layers below it (tests/integration/layers.rs
//! checks every `use crate::`):
//!
//! 0. `error`, `tensor`: one error type; dtypes, shapes, host tensors, image geometry
//! 1. `backend`: the op set and the backends that run it (cpu, wgpu, cuda)
//! 2. `graph`: static graphs over the op set, planned arena, sessions
//! 3. `io`: safetensors, images (PNG, npz, PNG folders) and the sink they are written through,
//!    atomic writes
//! 4. `sampling`: schedules, samplers, guidance, recipes (sees a `Denoiser`, never a model)
//! 5. `models`: one file per backbone, config + weights -> graph; `text`: the CLIP tokenizer
//! 6. `pipeline`: a model's graph as a denoiser, VAE decoding, bundled models, generation
//! 7. `tools`: bench, verify, soak, weight checks, merging shards
//!
//! The command line (src/cli, in the binary) sits on top.
pub mod error;
pub mod tensor;

pub mod backend;

pub mod graph;

pub mod io;

pub mod sampling;

pub mod models;
pub mod text;

pub mod pipeline;

pub mod tools;

pub use error::{Error, Result};
