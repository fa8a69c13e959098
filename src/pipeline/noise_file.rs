//! `--noise F.safetensors`: a run's initial noise x_T from a file (tensor `noise`, f32/f16/bf16
//! [images, C, H, W]) instead of the seeded streams, for reproducing a PyTorch run exactly. Only
//! x_T comes from the file: a stochastic sampler's later draws (DDPM) stay seeded.
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::safetensors::SafetensorsFile;
use crate::sampling::{NoiseSource, SeededNoise};
use crate::tensor::{ImageGeometry, Shape};

/// Tensor key of the noise.
pub const NOISE_KEY: &str = "noise";

/// The whole run's x_T, image by global index.
#[derive(Debug)]
pub struct InitialNoise {
    values: Vec<f32>,
    per_image: usize,
    /// What `ditrt sample` names the file by in its run key.
    pub content_id: String,
}

impl InitialNoise {
    /// The file's `noise`, which must be [images, C, H, W] of the model's input geometry.
    pub fn open(file: &SafetensorsFile, geometry: ImageGeometry, images: u64) -> Result<Arc<InitialNoise>> {
        let tensor = file.tensor(NOISE_KEY)?;
        let want = Shape(vec![images as usize, geometry.channels, geometry.height, geometry.width]);
        if !tensor.dtype.is_float() || tensor.shape != want {
            return Err(file.tensor_err(
                NOISE_KEY,
                format!("expected a float tensor of shape {want} (images x the model's input), found {:?} {}", tensor.dtype, tensor.shape),
            ));
        }
        let per_image = want.numel() / (images as usize).max(1);
        Ok(Arc::new(InitialNoise { values: tensor.to_f32(), per_image, content_id: file.content_id() }))
    }

    /// x_T for images first..first + count, then the seeded draws of the same images.
    pub fn source(self: &Arc<Self>, seed: u64, first: u64, count: usize) -> Result<FileNoise> {
        let start = first as usize * self.per_image;
        let end = start + count * self.per_image;
        if end > self.values.len() {
            return Err(Error::invalid(format!(
                "--noise holds {} images, the run needs image {}",
                self.values.len() / self.per_image,
                end / self.per_image - 1
            )));
        }
        Ok(FileNoise { noise: self.clone(), range: (start, end), first_draw: true, seeded: SeededNoise::new(seed, first, count) })
    }
}

/// A batch's noise: the file's x_T, then seeded draws.
pub struct FileNoise {
    noise: Arc<InitialNoise>,
    range: (usize, usize),
    first_draw: bool,
    seeded: SeededNoise,
}

impl NoiseSource for FileNoise {
    fn images(&self) -> usize {
        self.seeded.images()
    }

    fn fill(&mut self, out: &mut [f32]) -> Result<()> {
        if !std::mem::take(&mut self.first_draw) {
            return self.seeded.fill(out);
        }
        let x_t = &self.noise.values[self.range.0..self.range.1];
        if out.len() != x_t.len() {
            return Err(Error::invalid(format!("x_T of {} values asked for, the noise file gives {}", out.len(), x_t.len())));
        }
        out.copy_from_slice(x_t);
        Ok(())
    }
}
