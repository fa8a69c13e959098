//! A backbone's static graph as a sampler's `Denoiser`: fixed-batch sessions, inputs checked,
//! short batches padded.
use std::sync::Arc;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::graph::Session;
use crate::models::weight_source::WeightSource;
use crate::models::ModelConfig;
use crate::pipeline::batch_fit::fitting_graph;
use crate::sampling::{BatchCondition, Conditioning, Denoiser};
use crate::tensor::ImageGeometry;
use crate::tensor::{DType, HostTensor};

pub struct GraphDenoiser {
    config: ModelConfig,
    geometry: ImageGeometry,
    session: Session,
    batch: usize,
}

impl GraphDenoiser {
    /// Build `config`'s graph for `batch` samples per launch, or the most `backend` can bind
    /// (`fitting_graph`), and bind it.
    pub fn new(backend: Arc<dyn Backend>, config: &ModelConfig, weights: &mut dyn WeightSource, batch: usize, dtype: DType) -> Result<Self> {
        let geometry = config.input_geometry()?;
        let (graph, batch) = fitting_graph(backend.as_ref(), config, weights, batch, dtype)?;
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
    fn launch(&mut self, x: &[f32], t: &[f32], cond: BatchCondition) -> Result<Vec<f32>> {
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
        match (cond, self.conditioning()) {
            (BatchCondition::Labels(y), _) => {
                let mut ids = y.to_vec();
                ids.resize(b, y[n - 1]);
                self.session.set_input("y", &HostTensor::from_u32([b], &ids))?;
            }
            (BatchCondition::Context(context), Conditioning::Text { tokens, dim }) => {
                self.session.set_input("context", &HostTensor::from_f32([b, tokens, dim], &pad(context, tokens * dim)))?;
            }
            _ => {}
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

    fn conditioning(&self) -> Conditioning {
        let io = self.config.io();
        match (io.context, io.num_classes) {
            (Some(context), _) => Conditioning::Text { tokens: context.tokens, dim: context.dim },
            (None, Some(_)) => Conditioning::Classes { null: io.null_class },
            (None, None) => Conditioning::Unconditional,
        }
    }

    fn predict(&mut self, x: &[f32], t: &[f32], cond: BatchCondition) -> Result<Vec<f32>> {
        let g = self.geometry();
        let per = g.channels * g.height * g.width;
        let n = t.len();
        if n == 0 || x.len() != n * per {
            return Err(Error::invalid(format!("predict: x has {} values, expected {n} x {per}", x.len())));
        }
        match (self.conditioning(), cond) {
            (Conditioning::Unconditional, BatchCondition::None) => {}
            (Conditioning::Classes { null }, BatchCondition::Labels(y)) => {
                if y.len() != n {
                    return Err(Error::invalid(format!("predict: {} labels for {n} samples", y.len())));
                }
                // Valid ids: the classes, and the null class where there is one.
                let rows = self.config.num_classes().unwrap_or(0) + null.is_some() as usize;
                if let Some(bad) = y.iter().find(|&&id| id as usize >= rows) {
                    return Err(Error::invalid(format!("class id {bad} out of range: the model's label table has {rows} rows")));
                }
            }
            (Conditioning::Text { tokens, dim }, BatchCondition::Context(context)) => {
                if context.len() != n * tokens * dim {
                    return Err(Error::invalid(format!("predict: {} context values for {n} samples of {tokens} x {dim}", context.len())));
                }
            }
            (model, _) => {
                return Err(Error::invalid(format!("predict: the condition does not fit the model's ({model:?}: class ids, text states or none)")))
            }
        }
        let out_per = self.out_channels() * g.height * g.width;
        let mut out = Vec::with_capacity(n * out_per);
        for start in (0..n).step_by(self.batch) {
            let end = (start + self.batch).min(n);
            let part = match cond {
                BatchCondition::None => BatchCondition::None,
                BatchCondition::Labels(y) => BatchCondition::Labels(&y[start..end]),
                BatchCondition::Context(c) => {
                    let per = c.len() / n;
                    BatchCondition::Context(&c[start * per..end * per])
                }
            };
            out.extend(self.launch(&x[start * per..end * per], &t[start..end], part)?);
        }
        Ok(out)
    }
}
