//! Noise schedules, samplers and guidance. A sampler sees a `Denoiser` (x, t, condition -> raw
//! prediction), never a backbone.
mod ddim;
mod ddpm;
pub mod dpm_solver;
mod dpm_solver_pp;
pub mod guidance;
mod guided;
pub mod noise;
pub mod recipe;
pub mod respace;
mod sample;
pub mod schedule;
pub mod vp;

use crate::error::Result;
use crate::tensor::ImageGeometry;

pub use guidance::Guidance;
pub use noise::{NoiseSource, SeededNoise};
pub use sample::{sample, Method, SamplerConfig};
pub use schedule::NoiseSchedule;

/// What a model is conditioned on, and so what the unconditional half of guidance gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conditioning {
    Unconditional,
    /// Class ids; guidance needs the null class (None: the model has none and is sampled unguided).
    Classes {
        null: Option<u32>,
    },
    /// Text-encoder states [tokens, dim] per sample; guidance's unconditional input is the empty
    /// prompt's encoding (U-ViT's text-to-image sampling).
    Text {
        tokens: usize,
        dim: usize,
    },
}

/// The condition of every sample of one model launch, as the denoiser takes it.
#[derive(Clone, Copy, Debug)]
pub enum BatchCondition<'a> {
    None,
    /// One class id per sample.
    Labels(&'a [u32]),
    /// [b, tokens, dim] text-encoder states, flattened.
    Context(&'a [f32]),
}

/// The condition of every image a sampler makes (one entry per image).
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    None,
    Classes(Vec<u32>),
    /// `context` [images, tokens, dim] flattened; `empty` [tokens, dim], the empty prompt's
    /// encoding (the unconditional half of guidance).
    Text {
        context: Vec<f32>,
        empty: Vec<f32>,
    },
}

/// What a sampler sees of a model.
pub trait Denoiser {
    /// Per-sample shape of x.
    fn geometry(&self) -> ImageGeometry;
    /// Channels of the raw prediction: C (eps) or 2C ([eps | v], learned variance range).
    fn out_channels(&self) -> usize;
    fn conditioning(&self) -> Conditioning;
    /// x: [b, C, H, W] flattened, t: [b], `cond` one entry per sample (of the model's
    /// conditioning) -> prediction [b, out_channels, H, W] flattened. Any b >= 1.
    fn predict(&mut self, x: &[f32], t: &[f32], cond: BatchCondition) -> Result<Vec<f32>>;
}
