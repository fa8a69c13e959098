//! The last stage of latent sampling: latents scaled back by the backbone's latent scale
//! (`Backbone::latent_scale`: 0.18215, U-ViT's MS-COCO models 0.23010) and decoded to images by
//! the Stable Diffusion KL-f8 VAE decoder (the decoder itself does not scale).
use std::sync::Arc;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::graph::Session;
use crate::io::safetensors::SafetensorsFile;
use crate::models::weight_source::FileWeights;
use crate::models::ModelConfig;
use crate::pipeline::batch_fit::fitting_graph;
use crate::tensor::ImageGeometry;
use crate::tensor::{DType, HostTensor};

pub struct LatentDecoder {
    session: Session,
    batch: usize,
    latent: ImageGeometry,
    /// Latents are divided by it before decoding.
    scale: f32,
}

impl LatentDecoder {
    /// The VAE in `file`, built for `batch` latents (or the most `backend` can bind:
    /// `fitting_graph`) of shape `latent` (square) sampled at latent scale `scale`.
    pub fn new(backend: Arc<dyn Backend>, file: &SafetensorsFile, latent: ImageGeometry, scale: f32, batch: usize, dtype: DType) -> Result<Self> {
        let mut config = match ModelConfig::from_file(file)? {
            ModelConfig::Vae(c) => c,
            other => {
                return Err(Error::Config {
                    path: file.path().to_path_buf(),
                    msg: format!("--vae needs a VAE decoder, this is a {} model", other.arch()),
                })
            }
        };
        if config.latent_channels != latent.channels || latent.height != latent.width {
            return Err(Error::Config {
                path: file.path().to_path_buf(),
                msg: format!(
                    "the VAE decodes square {}-channel latents, the model samples {}x{}x{}",
                    config.latent_channels, latent.channels, latent.height, latent.width
                ),
            });
        }
        // The weights do not depend on the latent size; build for the model's.
        config.latent_size = latent.height;
        let (graph, batch) = fitting_graph(backend.as_ref(), &ModelConfig::Vae(config), &mut FileWeights::new(file), batch, dtype)?;
        Ok(LatentDecoder { session: Session::new(backend, &graph)?, batch, latent, scale })
    }

    /// Latents per launch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Geometry of one decoded image.
    pub fn image_geometry(&self) -> Result<ImageGeometry> {
        match self.session.output_shape("out").map(|s| s.dims()) {
            Some(&[_, channels, height, width]) => Ok(ImageGeometry { channels, height, width }),
            other => Err(Error::invalid(format!("VAE decoder output of shape {other:?}, expected [N, C, H, W]"))),
        }
    }

    /// Decode `count` latents [count, C, h, w] (as sampled, i.e. scaled) to images in [-1, 1]:
    /// returns (pixels [count, 3, H, W], geometry of one image).
    pub fn decode(&self, latents: &[f32], count: usize) -> Result<(Vec<f32>, ImageGeometry)> {
        let g = self.latent;
        let per = g.channels * g.height * g.width;
        let mut images = Vec::new();
        let mut geometry = None;
        for start in (0..count).step_by(self.batch) {
            let n = self.batch.min(count - start);
            let mut x: Vec<f32> = latents[start * per..(start + n) * per].iter().map(|v| v / self.scale).collect();
            x.resize(self.batch * per, 0.0);
            self.session.set_input("x", &HostTensor::from_f32([self.batch, g.channels, g.height, g.width], &x))?;
            self.session.run()?;
            let out = self.session.output("out")?;
            let d = out.shape.dims().to_vec();
            let image = ImageGeometry { channels: d[1], height: d[2], width: d[3] };
            images.extend_from_slice(&out.to_f32()[..n * d[1] * d[2] * d[3]]);
            geometry = Some(image);
        }
        geometry.map(|g| (images, g)).ok_or_else(|| Error::invalid("nothing to decode: 0 latents"))
    }
}
