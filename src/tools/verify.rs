//! Running a model on a fixture (the inputs its graph takes — `x`, `t`, `y`, `context`, or a
//! text encoder's `input_ids` — and the reference output `out`, all written by weights-tools
//! from the PyTorch reference) and measuring the difference.
use std::path::Path;
use std::sync::Arc;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::graph::Session;
use crate::io::safetensors::{read_all, SafetensorsFile};
use crate::models::backbone::ModelInput;
use crate::models::weight_source::FileWeights;
use crate::models::ModelConfig;
use crate::tensor::{DType, HostTensor};

/// How far an output is from its reference.
#[derive(Clone, Copy, Debug)]
pub struct Comparison {
    /// ||got - want|| / ||want||.
    pub rel_l2: f64,
    pub max_abs: f64,
    /// Whether any value is NaN or infinite (never a pass).
    pub non_finite: bool,
}

impl Comparison {
    pub fn new(got: &[f32], want: &[f32]) -> Self {
        assert_eq!(got.len(), want.len(), "Comparison::new: lengths differ");
        let (mut diff2, mut ref2, mut max_abs, mut non_finite) = (0f64, 0f64, 0f64, false);
        for (&g, &w) in got.iter().zip(want) {
            non_finite |= !g.is_finite();
            let d = (g as f64 - w as f64).abs();
            diff2 += d * d;
            ref2 += (w as f64) * (w as f64);
            // f64::max drops a NaN; here one NaN makes the largest difference NaN.
            max_abs = if d.is_nan() || max_abs.is_nan() { f64::NAN } else { max_abs.max(d) };
        }
        Comparison { rel_l2: (diff2 / ref2.max(f64::MIN_POSITIVE)).sqrt(), max_abs, non_finite }
    }

    pub fn passes(&self, tol: f64) -> bool {
        !self.non_finite && self.rel_l2 <= tol
    }
}

/// Default rel_l2 tolerance of a whole forward pass by storage dtype.
pub fn default_tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-5,
        DType::F16 => 1e-2,
        DType::BF16 | DType::U32 => 4e-2,
    }
}

fn fixture_tensor<'a>(tensors: &'a std::collections::HashMap<String, HostTensor>, path: &Path, key: &str) -> Result<&'a HostTensor> {
    tensors.get(key).ok_or_else(|| Error::Tensor { path: path.to_path_buf(), key: key.into(), msg: "missing from fixture".into() })
}

/// (what its ids are, the largest id) of an id input: class ids `y`, token ids `input_ids`.
fn largest_id(config: &ModelConfig, input: &str) -> Option<(&'static str, u32)> {
    match (input, config.io().input) {
        ("y", _) => config.null_class().or_else(|| config.num_classes().and_then(|n| (n as u32).checked_sub(1))).map(|l| ("class", l)),
        ("input_ids", ModelInput::Tokens { vocab, .. }) => u32::try_from(vocab - 1).ok().map(|l| ("token", l)),
        _ => None,
    }
}

/// Run the model in `weights` on the fixture's inputs and compare with its `out`.
pub fn verify_fixture(backend: Arc<dyn Backend>, weights: &Path, fixture: &Path, dtype: DType) -> Result<Comparison> {
    let file = SafetensorsFile::open(weights)?;
    let config = ModelConfig::from_file(&file)?;
    let tensors = read_all(fixture)?;
    let main = match config.io().input {
        ModelInput::Image(_) => "x",
        ModelInput::Tokens { .. } => "input_ids",
    };
    let first = fixture_tensor(&tensors, fixture, main)?;
    let want = fixture_tensor(&tensors, fixture, "out")?;
    let batch = first.shape.dims().first().copied().unwrap_or(0);
    // The VAE is fully convolutional: it decodes the latent it is given; the config's size is
    // only a default (one converted file serves 256 px and 512 px).
    let config = match (config, first.shape.dims()) {
        (ModelConfig::Vae(mut vae), &[_, _, h, w]) if h == w => {
            vae.latent_size = h;
            ModelConfig::Vae(vae)
        }
        (config, _) => config,
    };
    let graph = config.build(&mut FileWeights::new(&file), batch, dtype)?;
    let session = Session::new(backend, &graph)?;
    // The inputs come from the fixture: a wrong shape or class id is the fixture's, named so.
    let input_err = |name: &str, e: Error| Error::Tensor { path: fixture.to_path_buf(), key: name.into(), msg: e.to_string() };
    for name in ["x", "t", "y", "context", "input_ids"] {
        if session.has_input(name) {
            let input = fixture_tensor(&tensors, fixture, name)?;
            if let (Some((what, largest)), DType::U32) = (largest_id(&config, name), input.dtype) {
                let ids = input.bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                if let Some(bad) = ids.into_iter().find(|&id| id > largest) {
                    return Err(input_err(
                        name,
                        Error::invalid(format!("{what} id {bad} is out of range (the largest this model takes is {largest})")),
                    ));
                }
            }
            session.set_input(name, input).map_err(|e| input_err(name, e))?;
        }
    }
    session.run()?;
    let got = session.output("out")?;
    if got.shape != want.shape {
        return Err(Error::Tensor {
            path: fixture.to_path_buf(),
            key: "out".into(),
            msg: format!("model output has shape {}, fixture has {}", got.shape, want.shape),
        });
    }
    Ok(Comparison::new(&got.to_f32(), &want.to_f32()))
}
