//! Where a model gets its parameters from: a checked safetensors file, or random values for
//! benchmarks. Every failure names the file and the tensor key.
use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use crate::error::Result;
use crate::io::safetensors::SafetensorsFile;
use crate::tensor::{DType, HostTensor, Shape};

/// Where a model gets its parameters from, by official key and expected shape.
pub trait WeightSource {
    /// The floating tensor `key`, which must have exactly `shape`.
    fn fetch(&mut self, key: &str, shape: &[usize]) -> Result<HostTensor>;
    /// Called after binding: a file with keys the model did not ask for, other than its
    /// `data_keys` (`Backbone::data_keys`), is an error.
    fn finish(&self, data_keys: &[&str]) -> Result<()>;
}

/// A safetensors file checked key by key against what the model asks for.
pub struct FileWeights<'a> {
    file: &'a SafetensorsFile,
    used: HashSet<String>,
}

impl<'a> FileWeights<'a> {
    pub fn new(file: &'a SafetensorsFile) -> Self {
        FileWeights { file, used: HashSet::new() }
    }
}

impl WeightSource for FileWeights<'_> {
    fn fetch(&mut self, key: &str, shape: &[usize]) -> Result<HostTensor> {
        let t = self.file.tensor(key)?;
        if !t.dtype.is_float() {
            return Err(self.file.tensor_err(key, format!("expected a floating dtype (F32, F16, BF16), found {:?}", self.file.info(key).unwrap().0)));
        }
        if t.shape.dims() != shape {
            return Err(self.file.tensor_err(key, format!("expected shape {}, found {}", Shape(shape.to_vec()), t.shape)));
        }
        self.used.insert(key.to_string());
        Ok(t)
    }

    fn finish(&self, data_keys: &[&str]) -> Result<()> {
        let extra: Vec<String> = self.file.keys().into_iter().filter(|k| !self.used.contains(k) && !data_keys.contains(&k.as_str())).collect();
        match extra.first() {
            None => Ok(()),
            Some(first) => {
                Err(self.file.tensor_err(first, format!("unexpected key: the model does not use it ({} unused key(s) in all)", extra.len())))
            }
        }
    }
}

/// Normally distributed values for any key (benchmarks with random weights).
pub struct RandomWeights {
    rng: StdRng,
    normal: Normal<f32>,
}

impl RandomWeights {
    pub fn new(seed: u64, std: f32) -> Self {
        RandomWeights { rng: StdRng::seed_from_u64(seed), normal: Normal::new(0.0, std).expect("finite std") }
    }
}

impl WeightSource for RandomWeights {
    fn fetch(&mut self, _key: &str, shape: &[usize]) -> Result<HostTensor> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| self.normal.sample(&mut self.rng)).collect();
        Ok(HostTensor::from_f32(shape, &values))
    }
    fn finish(&self, _data_keys: &[&str]) -> Result<()> {
        Ok(())
    }
}

/// Zeros of `.0`'s dtype for any key, freshly allocated: pages the OS maps only when written,
/// so a graph planned with them costs no resident memory for its weights (memory preflights,
/// plans of full-size presets).
pub struct ZeroWeights(pub DType);

impl WeightSource for ZeroWeights {
    fn fetch(&mut self, _key: &str, shape: &[usize]) -> Result<HostTensor> {
        let n: usize = shape.iter().product();
        Ok(HostTensor { shape: Shape(shape.to_vec()), dtype: self.0, bytes: vec![0; n * self.0.size()] })
    }
    fn finish(&self, _data_keys: &[&str]) -> Result<()> {
        Ok(())
    }
}
