//! A backbone's static graph as a sampler's `Denoiser`: fixed-batch sessions, inputs checked,
//! short batches padded.
use std::sync::Arc;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::graph::Session;
use crate::models::weight_source::WeightSource;
use crate::models::ModelConfig;
use crate::sampling::Denoiser;
use crate::tensor::ImageGeometry;
use crate::tensor::{DType, HostTensor};

pub struct GraphDenoiser {
    config: ModelConfig,
    geometry: ImageGeometry,
    session: Session,
    batch: usize,
}

impl GraphDenoiser {
    /// Build `config`'s graph for `batch` samples per launch and bind it to `backend`.
    pub fn new(backend: Arc<dyn Backend>, config: &ModelConfig, weights: &mut dyn WeightSource, batch: usize, dtype: DType) -> Result<Self> {
        let geometry = config.input_geometry()?;
        let graph = config.build(weights, batch, dtype)?;
        let session = Session::new(backend, &graph)?;
        Ok(GraphDenoiser { config: config.clone(), geometry, session, batch })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Samples per launch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    pub fn backend_name(&self) -> String {
        self.session.backend().name()
    }

    /// One launch of at most `self.batch` samples; shorter batches repeat their last sample.
    fn launch(&mut self, x: &[f32], t: &[f32], y: &[u32]) -> Result<Vec<f32>> {
        let g = self.geometry();
        let per = g.channels * g.height * g.width;
        let n = t.len();
        let pad = |v: &[f32], width: usize| -> Vec<f32> {
            let mut out = v.to_vec();
            for _ in n..self.batch {
                out.extend_from_slice(&v[(n - 1) * width..n * width]);
            }
            out
        };
        let b = self.batch;
        self.session.set_input("x", &HostTensor::from_f32([b, g.channels, g.height, g.width], &pad(x, per)))?;
        self.session.set_input("t", &HostTensor::from_f32([b], &pad(t, 1)))?;
        if self.config.num_classes().is_some() {
            let mut ids = y.to_vec();
            ids.resize(b, y[n - 1]);
            self.session.set_input("y", &HostTensor::from_u32([b], &ids))?;
        }
        self.session.run()?;
        let mut out = self.session.output("out")?.to_f32();
        out.truncate(n * self.out_channels() * g.height * g.width);
        Ok(out)
    }
}

impl Denoiser for GraphDenoiser {
    fn geometry(&self) -> ImageGeometry {
        self.geometry
    }

    fn out_channels(&self) -> usize {
        self.config.output_channels()
    }

    fn null_class(&self) -> Option<u32> {
        self.config.null_class()
    }

    fn predict(&mut self, x: &[f32], t: &[f32], y: &[u32]) -> Result<Vec<f32>> {
        let g = self.geometry();
        let per = g.channels * g.height * g.width;
        let n = t.len();
        if n == 0 || x.len() != n * per {
            return Err(Error::invalid(format!("predict: x has {} values, expected {n} x {per}", x.len())));
        }
        if let Some(classes) = self.config.num_classes() {
            if y.len() != n {
                return Err(Error::invalid(format!("predict: {} labels for {n} samples", y.len())));
            }
            // Valid ids: the classes, and the null class where there is one.
            let rows = classes + self.null_class().is_some() as usize;
            if let Some(bad) = y.iter().find(|&&id| id as usize >= rows) {
                return Err(Error::invalid(format!("class id {bad} out of range: the model's label table has {rows} rows")));
            }
        }
        let out_per = self.out_channels() * g.height * g.width;
        let mut out = Vec::with_capacity(n * out_per);
        for start in (0..n).step_by(self.batch) {
            let end = (start + self.batch).min(n);
            let ys = if y.is_empty() { &[][..] } else { &y[start..end] };
            out.extend(self.launch(&x[start * per..end * per], &t[start..end], ys)?);
        }
        Ok(out)
    }
}
