//! The sampling pipeline, in two stages as stable-diffusion.cpp's `new_sd_ctx` /
//! `generate_image`: a `SamplingModel` (file, config, the sampler its recipe gives with the
//! caller's overrides) is known before any graph is built; `build` binds the backbone's graph
//! and the VAE decoder to a backend once, and `Pipeline::generate` makes any range of a run's
//! images. Each image's noise depends only on (seed, image index), so ranges run separately
//! concatenate to exactly one whole run. The CLI's sample and soak and the digit tests all
//! come through here.
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::io::image::Images;
use crate::io::safetensors::SafetensorsFile;
use crate::models::weight_source::FileWeights;
use crate::models::ModelConfig;
use crate::pipeline::denoiser::GraphDenoiser;
use crate::pipeline::noise_file::InitialNoise;
use crate::pipeline::prompts::{PromptEncoder, Truncated};
use crate::pipeline::vae_decode::LatentDecoder;
use crate::sampling::recipe::{Recipe, SamplerName, SAMPLING_KEY};
use crate::sampling::{sample, Condition, Denoiser, NoiseSource, SamplerConfig, SeededNoise};
use crate::tensor::{DType, ImageGeometry};

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
    /// many samples when guided: both halves go in one launch), for a latent model the VAE
    /// decoder in `vae` for the same batch (None: the run keeps its latents), and for a
    /// text-conditioned model its text encoder.
    pub fn build(
        self,
        backend: Arc<dyn Backend>,
        dtype: DType,
        batch: usize,
        vae: Option<&SafetensorsFile>,
        text_encoder: Option<&SafetensorsFile>,
    ) -> Result<Pipeline> {
        if batch == 0 {
            return Err(Error::invalid("batch must be at least 1"));
        }
        let latent = self.config.input_geometry()?;
        let scale = self.config.latent_scale();
        let decoder = vae.map(|vae| LatentDecoder::new(backend.clone(), vae, latent, scale, batch, dtype)).transpose()?;
        let prompts = match (self.config.io().context, text_encoder) {
            (Some(context), Some(file)) => Some(PromptEncoder::new(backend.clone(), file, dtype, context)?),
            (Some(_), None) => {
                return Err(Error::invalid(format!(
                    "{} is text-conditioned: give its text encoder with --text-encoder (weights-tools/convert.py --arch clip_text)",
                    self.file.path().display()
                )))
            }
            (None, Some(file)) => return Err(Error::invalid(format!("--text-encoder {}: this model takes no text", file.path().display()))),
            (None, None) => None,
        };
        let per_launch = batch * if self.sampler.guidance.is_guided() { 2 } else { 1 };
        let denoiser = GraphDenoiser::new(backend, &self.config, &mut FileWeights::new(&self.file), per_launch, dtype)?;
        Ok(Pipeline { sampling: RunSampler { model: self, denoiser, prompts, batch }, decoder })
    }

    /// Whether images of this model need a VAE to become pictures (its samples are latents).
    pub fn needs_decoder(&self) -> bool {
        self.config.input_geometry().is_ok_and(|g| ![1, 3].contains(&g.channels))
    }
}

/// The class (or prompt) of each image of a run, a function of its global index alone:
/// nothing proportional to the run's size is held, and shards agree with one whole run.
#[derive(Clone, Debug)]
pub enum Classes {
    /// An unconditional model.
    None,
    /// A text-conditioned model: image i has prompt (i / per_prompt) % prompts (indices into
    /// the prompts given to `Pipeline::set_prompts`).
    Prompts { per_prompt: u64, prompts: u32 },
    /// Image i has class list[i % list.len()].
    Cycle(Vec<u32>),
    /// Image i has a class drawn uniformly from 0..num_classes by a stream keyed by (seed, i),
    /// apart from the noise streams.
    Random { seed: u64, num_classes: u32 },
}

impl Classes {
    /// Key of the label streams: they never share draws with the noise streams.
    const RANDOM_KEY: u64 = 0x6c61_6265_6c73;

    /// Class of image `index`; None for an unconditional run.
    pub fn of(&self, index: u64) -> Option<u32> {
        match self {
            Classes::None => None,
            Classes::Prompts { per_prompt, prompts } => Some(((index / per_prompt.max(&1)) % *prompts.max(&1) as u64) as u32),
            Classes::Cycle(list) => Some(list[(index % list.len() as u64) as usize]),
            Classes::Random { seed, num_classes } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed ^ Self::RANDOM_KEY);
                rng.set_stream(index);
                Some(rng.random_range(0..*num_classes))
            }
        }
    }
}

/// Which images of a run to make.
#[derive(Clone, Debug)]
pub struct Run {
    pub seed: u64,
    /// Global index of the first image (noise streams and classes are keyed by it).
    pub first_image: u64,
    pub classes: Classes,
    /// Number of images.
    pub count: u64,
    /// x_T of every image of the whole run from a file (`--noise`) instead of the seeded streams.
    pub noise: Option<Arc<InitialNoise>>,
}

/// Where a run stands after a model evaluation.
#[derive(Clone, Copy, Debug)]
pub struct RunProgress {
    /// Images finished, and in the run.
    pub images_done: u64,
    pub images: u64,
    /// Sampler step within the batch being sampled (model evaluations, 1-based), of `steps`.
    pub step: usize,
    pub steps: usize,
    /// Model evaluations done in the run, and in all.
    pub evaluations_done: usize,
    pub evaluations: usize,
}

/// Takes each batch's samples [n, C, H, W] (model space, before decoding) and their classes or
/// prompt indices.
pub type SampleSink<'a> = dyn FnMut(&[f32], &[u32]) -> Result<()> + 'a;

/// A model's graphs bound to a backend, ready to sample.
pub struct Pipeline {
    sampling: RunSampler,
    decoder: Option<LatentDecoder>,
}

/// The sampling half of a pipeline (apart from the decoder, so that a batch can be decoded
/// while the next is sampled by the same call).
struct RunSampler {
    model: SamplingModel,
    denoiser: GraphDenoiser,
    prompts: Option<PromptEncoder>,
    batch: usize,
}

impl RunSampler {
    /// Model evaluations that `count` images take (progress reporting).
    fn evaluations(&self, count: u64) -> usize {
        let n = count.div_ceil(self.batch as u64).saturating_mul(self.model.sampler.evaluations() as u64);
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// `Pipeline::sample_into`.
    fn sample_into(&mut self, run: &Run, progress: &mut dyn FnMut(RunProgress), sink: &mut SampleSink) -> Result<()> {
        let (evaluations, per_batch) = (self.evaluations(run.count), self.model.sampler.evaluations());
        let mut start = 0u64;
        let mut batches_done = 0usize;
        while start < run.count {
            let n = (self.batch as u64).min(run.count - start) as usize;
            let first = run.first_image + start;
            let labels: Vec<u32> = (first..first + n as u64).filter_map(|i| run.classes.of(i)).collect();
            let condition = match (&run.classes, &self.prompts) {
                (Classes::None, _) => Condition::None,
                (Classes::Prompts { .. }, Some(prompts)) => prompts.condition(&labels)?,
                (Classes::Prompts { .. }, None) => return Err(Error::invalid("prompts given for a model that takes no text")),
                (_, Some(_)) => return Err(Error::invalid("a text-conditioned model samples from prompts, not classes")),
                (_, None) => Condition::Classes(labels.clone()),
            };
            let mut noise: Box<dyn NoiseSource> = match &run.noise {
                Some(file) => Box::new(file.source(run.seed, first, n)?),
                None => Box::new(SeededNoise::new(run.seed, first, n)),
            };
            let mut report = |step, steps| {
                let evaluations_done = batches_done.saturating_mul(per_batch).saturating_add(step);
                progress(RunProgress { images_done: start, images: run.count, step, steps, evaluations_done, evaluations })
            };
            let x = sample(&mut self.denoiser, &self.model.sampler, &condition, noise.as_mut(), &mut report)?;
            sink(&x, &labels)?;
            start += n as u64;
            batches_done += 1;
        }
        Ok(())
    }
}

impl Pipeline {
    pub fn model(&self) -> &SamplingModel {
        &self.sampling.model
    }

    pub fn backend_name(&self) -> String {
        self.sampling.denoiser.backend_name()
    }

    /// Model evaluations that `count` images take (progress reporting).
    pub fn evaluations(&self, count: u64) -> usize {
        self.sampling.evaluations(count)
    }

    /// Geometry of the images the pipeline makes (decoded, for a latent model).
    pub fn image_geometry(&self) -> Result<ImageGeometry> {
        match &self.decoder {
            Some(d) => d.image_geometry(),
            None => Ok(self.sampling.denoiser.geometry()),
        }
    }

    /// Encode a text-conditioned model's prompts (each once) for the runs that follow; returns
    /// the prompts cut to the text encoder's context.
    pub fn set_prompts(&mut self, prompts: &[String]) -> Result<Vec<Truncated>> {
        match &mut self.sampling.prompts {
            Some(encoder) => encoder.set_prompts(prompts),
            None => Err(Error::invalid("prompts given for a model that takes no text")),
        }
    }

    /// Sample the run's images batch by batch and hand each batch's samples (model space,
    /// before decoding: [n, C, H, W]) with its classes or prompt indices (empty when
    /// unconditional) to `sink` as soon as it is made; `progress` is called after every model
    /// evaluation. A run of 0 images makes nothing.
    pub fn sample_into(&mut self, run: &Run, progress: &mut dyn FnMut(RunProgress), sink: &mut SampleSink) -> Result<()> {
        self.sampling.sample_into(run, progress, sink)
    }

    /// `sample_into` with each batch made into images, decoded where the pipeline has a
    /// decoder (a latent model without one is an error).
    pub fn generate_into(
        &mut self,
        run: &Run,
        progress: &mut dyn FnMut(RunProgress),
        sink: &mut dyn FnMut(&Images, &[u32]) -> Result<()>,
    ) -> Result<()> {
        let g = self.sampling.denoiser.geometry();
        if self.decoder.is_none() && self.sampling.model.needs_decoder() {
            return Err(Error::invalid(format!(
                "{} samples {}-channel latents: give --vae with the SD KL-f8 decoder (weights-tools/convert.py --arch vae), or write the latents (--out F.safetensors)",
                self.sampling.model.file.path().display(),
                g.channels
            )));
        }
        let decoder = &self.decoder;
        self.sampling.sample_into(run, progress, &mut |x, labels| {
            let n = x.len() / (g.channels * g.height * g.width);
            let images = match decoder {
                None => Images::from_samples(x, n, g.channels, g.height, g.width),
                Some(d) => {
                    let (pixels, image) = d.decode(x, n)?;
                    Images::from_samples(&pixels, n, image.channels, image.height, image.width)
                }
            };
            sink(&images, labels)
        })
    }

    /// The run's images in memory (a small run: tests, soak).
    pub fn generate(&mut self, run: &Run, progress: &mut dyn FnMut(RunProgress)) -> Result<Images> {
        let mut parts = Vec::new();
        self.generate_into(run, progress, &mut |images, _| {
            parts.push(images.clone());
            Ok(())
        })?;
        if parts.is_empty() {
            return Err(Error::invalid("nothing to sample: 0 images"));
        }
        Images::concat(&parts)
    }
}
