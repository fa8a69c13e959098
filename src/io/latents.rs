//! `--out F.safetensors`: a run's samples before decoding (a latent model's latents, a pixel
//! model's [-1, 1] samples), for comparing with a PyTorch run value by value: tensor `latents`
//! f32 [N, C, H, W], `labels` u32 [N] when the images carry classes (or prompt indices), and the
//! run key under metadata `ditrt.run`. Held in memory (16 KiB per SD latent) and written
//! atomically when complete.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::safetensors::{write_safetensors, SafetensorsFile};
use crate::tensor::{HostTensor, ImageGeometry};

/// Metadata key of the run key.
const RUN_KEY: &str = "ditrt.run";

pub struct LatentsWriter {
    path: PathBuf,
    key: String,
    geometry: ImageGeometry,
    labelled: bool,
    values: Vec<f32>,
    labels: Vec<u32>,
}

impl LatentsWriter {
    pub fn new(path: &Path, key: String, geometry: ImageGeometry, labelled: bool) -> Self {
        LatentsWriter { path: path.to_path_buf(), key, geometry, labelled, values: Vec::new(), labels: Vec::new() }
    }

    /// The next samples [n, C, H, W] and their labels (one per sample; empty when unlabelled).
    pub fn append(&mut self, samples: &[f32], labels: &[u32]) -> Result<()> {
        let g = self.geometry;
        let per = g.channels * g.height * g.width;
        if per == 0 || !samples.len().is_multiple_of(per) || (self.labelled && labels.len() * per != samples.len()) {
            return Err(Error::File {
                path: self.path.clone(),
                msg: format!("{} values and {} labels are not whole samples of {}x{}x{}", samples.len(), labels.len(), g.channels, g.height, g.width),
            });
        }
        self.values.extend_from_slice(samples);
        self.labels.extend_from_slice(labels);
        Ok(())
    }

    pub fn finish(self) -> Result<()> {
        let g = self.geometry;
        let n = self.values.len() / (g.channels * g.height * g.width);
        let latents = HostTensor::from_f32([n, g.channels, g.height, g.width], &self.values);
        let labels = HostTensor::from_u32([self.labels.len()], &self.labels);
        let mut tensors = vec![("latents", &latents)];
        if self.labelled {
            tensors.push(("labels", &labels));
        }
        write_safetensors(&self.path, &tensors, &BTreeMap::from([(RUN_KEY.to_string(), self.key)]))
    }
}

/// The run key of a complete latents file at `path`; None when there is none.
pub fn read_latents_run_key(path: &Path) -> Option<String> {
    SafetensorsFile::open(path).ok()?.metadata(RUN_KEY).map(str::to_string)
}
