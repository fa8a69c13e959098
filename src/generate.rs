//! A sampling run over a range of image indices, in batches: each image's noise depends only
//! on (seed, image index), so ranges run separately concatenate to exactly one whole run.
use crate::decode::LatentDecoder;
use crate::error::{Error, Result};
use crate::image::Images;
use crate::sampling::{sample, Denoiser, SamplerConfig, SeededNoise};

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
    /// Images per sampler call (the model sees twice as many when guided).
    pub batch: usize,
}

/// Model evaluations a run makes in all, for progress reporting.
pub fn evaluations(run: &Run, sampler: &SamplerConfig) -> usize {
    run.count.div_ceil(run.batch.max(1)) * sampler.evaluations()
}

/// Sample the run's images, decoding latents through `decoder` where given; `progress` is
/// called after every model evaluation.
pub fn generate(
    denoiser: &mut dyn Denoiser,
    sampler: &SamplerConfig,
    run: &Run,
    decoder: Option<&LatentDecoder>,
    progress: &mut dyn FnMut(),
) -> Result<Images> {
    if run.batch == 0 {
        return Err(Error::invalid("batch must be at least 1"));
    }
    if !run.labels.is_empty() && run.labels.len() != run.count {
        return Err(Error::invalid(format!("{} labels for {} images", run.labels.len(), run.count)));
    }
    let g = denoiser.geometry();
    let mut parts = Vec::new();
    for start in (0..run.count).step_by(run.batch) {
        let n = run.batch.min(run.count - start);
        let labels = if run.labels.is_empty() { &[][..] } else { &run.labels[start..start + n] };
        let mut noise = SeededNoise::new(run.seed, run.first_image + start as u64, n);
        let x = sample(denoiser, sampler, labels, &mut noise, &mut |_, _| progress())?;
        parts.push(match decoder {
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
