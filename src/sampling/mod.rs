//! Noise schedules, samplers and guidance. A sampler sees a `Denoiser` (x, t, y -> raw
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

/// What a sampler sees of a model.
pub trait Denoiser {
    /// Per-sample shape of x.
    fn geometry(&self) -> ImageGeometry;
    /// Channels of the raw prediction: C (eps) or 2C ([eps | v], learned variance range).
    fn out_channels(&self) -> usize;
    /// Id of the null class used for the unconditional half of guidance (None: unconditional model).
    fn null_class(&self) -> Option<u32>;
    /// x: [b, C, H, W] flattened, t: [b], y: [b] (empty for unconditional models)
    /// -> prediction [b, out_channels, H, W] flattened. Any b >= 1.
    fn predict(&mut self, x: &[f32], t: &[f32], y: &[u32]) -> Result<Vec<f32>>;
}
