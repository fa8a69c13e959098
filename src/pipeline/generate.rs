//! The sampling pipeline, in two stages as stable-diffusion.cpp's `new_sd_ctx` /
//! `generate_image`: a `SamplingModel` (file, config, the sampler its recipe gives with the
//! caller's overrides) is known before any graph is built; `build` binds the backbone's graph
//! and the VAE decoder to a backend once, and `Pipeline::generate` makes any range of a run's
//! images. Each image's noise depends only on (seed, image index), so ranges run separately
//! concatenate to exactly one whole run. The CLI's sample and soak and the digit tests all
//! come through here.
use std::sync::Arc;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::io::image::Images;
use crate::io::safetensors::SafetensorsFile;
use crate::models::weight_source::FileWeights;
use crate::models::ModelConfig;
use crate::pipeline::denoiser::GraphDenoiser;
use crate::pipeline::vae_decode::LatentDecoder;
use crate::sampling::recipe::{Recipe, SamplerName, SAMPLING_KEY};
use crate::sampling::{sample, Denoiser, SamplerConfig, SeededNoise};
use crate::tensor::DType;

/// Changes to a model's recipe; None keeps the file's (or the official) value.
#[derive(Clone, Debug, Default)]
pub struct RecipeOverrides {
    pub sampler: Option<SamplerName>,
    pub steps: Option<usize>,
    /// Guidance scale in diffusers' and DiT's convention (u + s(c − u), 1 = off) for every
    /// backbone; recipes in files keep the backbone's own.
    pub cfg_scale: Option<f64>,
    pub eta: Option<f64>,
    /// DiT-style guidance on every ε channel instead of the first 3.
    pub all_channels: bool,
}

/// A model file with its config and sampler: what a run needs to know before building graphs.
pub struct SamplingModel {
    pub file: SafetensorsFile,
    pub config: ModelConfig,
    pub sampler: SamplerConfig,
}

impl SamplingModel {
    pub fn new(file: SafetensorsFile, overrides: &RecipeOverrides) -> Result<Self> {
        let config = ModelConfig::from_file(&file)?;
        let backbone = config.sampling()?;
        let file_recipe = Recipe::of_file(&file, &backbone)?;
        let recipe = Recipe {
            sampler: overrides.sampler.unwrap_or(file_recipe.sampler),
            steps: overrides.steps.unwrap_or(file_recipe.steps),
            cfg_scale: overrides.cfg_scale.map(|s| backbone.guidance.native_scale(s)).unwrap_or(file_recipe.cfg_scale),
            eta: overrides.eta.unwrap_or(file_recipe.eta),
            schedule: file_recipe.schedule,
        };
        // A bad value may come from the file's recipe: name the file.
        let sampler = recipe.sampler_config(&backbone, overrides.all_channels).map_err(|e| Error::Config {
            path: file.path().to_path_buf(),
            msg: format!("sampling recipe ({SAMPLING_KEY} with the command line's changes): {e}"),
        })?;
        Ok(SamplingModel { file, config, sampler })
    }

    /// Bind the backbone's graph for `batch` images per sampler call (the model sees twice as
    /// many samples when guided: both halves go in one launch) and, for a latent model, the VAE
    /// decoder in `vae` for the same batch.
    pub fn build(self, backend: Arc<dyn Backend>, dtype: DType, batch: usize, vae: Option<&SafetensorsFile>) -> Result<Pipeline> {
        if batch == 0 {
            return Err(Error::invalid("batch must be at least 1"));
        }
        let latent = self.config.input_geometry();
        let decoder = match vae {
            Some(vae) => Some(LatentDecoder::new(backend.clone(), vae, latent, batch, dtype)?),
            None if [1, 3].contains(&latent.channels) => None,
            None => {
                return Err(Error::invalid(format!(
                    "{} samples {}-channel latents: give --vae with the SD KL-f8 decoder (weights-tools/convert.py --arch vae)",
                    self.file.path().display(),
                    latent.channels
                )))
            }
        };
        let per_launch = batch * if self.sampler.guidance.is_guided() { 2 } else { 1 };
        let denoiser = GraphDenoiser::new(backend, &self.config, &mut FileWeights::new(&self.file), per_launch, dtype)?;
        Ok(Pipeline { model: self, denoiser, decoder, batch })
    }
}

/// Which images of a run to make.
#[derive(Clone, Debug)]
pub struct Run {
    pub seed: u64,
    /// Global index of the first image (noise streams are keyed by it).
    pub first_image: u64,
    /// One class per image (empty for unconditional models).
    pub labels: Vec<u32>,
    /// Number of images.
    pub count: usize,
}

/// Where a run stands after a model evaluation.
#[derive(Clone, Copy, Debug)]
pub struct RunProgress {
    /// Images finished, and in the run.
    pub images_done: usize,
    pub images: usize,
    /// Sampler step within the batch being sampled (model evaluations, 1-based), of `steps`.
    pub step: usize,
    pub steps: usize,
    /// Model evaluations done in the run, and in all.
    pub evaluations_done: usize,
    pub evaluations: usize,
}

/// A model's graphs bound to a backend, ready to sample.
pub struct Pipeline {
    model: SamplingModel,
    denoiser: GraphDenoiser,
    decoder: Option<LatentDecoder>,
    batch: usize,
}

impl Pipeline {
    pub fn model(&self) -> &SamplingModel {
        &self.model
    }

    pub fn backend_name(&self) -> String {
        self.denoiser.backend_name()
    }

    /// Model evaluations that `count` images take (progress reporting).
    pub fn evaluations(&self, count: usize) -> usize {
        count.div_ceil(self.batch) * self.model.sampler.evaluations()
    }

    /// Sample the run's images in batches, decoding latents where the pipeline has a decoder;
    /// `progress` is called after every model evaluation.
    pub fn generate(&mut self, run: &Run, progress: &mut dyn FnMut(RunProgress)) -> Result<Images> {
        if !run.labels.is_empty() && run.labels.len() != run.count {
            return Err(Error::invalid(format!("{} labels for {} images", run.labels.len(), run.count)));
        }
        let g = self.denoiser.geometry();
        let (evaluations, per_batch) = (self.evaluations(run.count), self.model.sampler.evaluations());
        let mut parts = Vec::new();
        for (index, start) in (0..run.count).step_by(self.batch).enumerate() {
            let n = self.batch.min(run.count - start);
            let labels = if run.labels.is_empty() { &[][..] } else { &run.labels[start..start + n] };
            let mut noise = SeededNoise::new(run.seed, run.first_image + start as u64, n);
            let mut report = |step, steps| {
                let evaluations_done = index * per_batch + step;
                progress(RunProgress { images_done: start, images: run.count, step, steps, evaluations_done, evaluations })
            };
            let x = sample(&mut self.denoiser, &self.model.sampler, labels, &mut noise, &mut report)?;
            parts.push(match &self.decoder {
                None => Images::from_samples(&x, n, g.channels, g.height, g.width),
                Some(d) => {
                    let (pixels, image) = d.decode(&x, n)?;
                    Images::from_samples(&pixels, n, image.channels, image.height, image.width)
                }
            });
        }
        if parts.is_empty() {
            return Err(Error::invalid("nothing to sample: 0 images"));
        }
        Images::concat(&parts)
    }
}
