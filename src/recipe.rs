//! How a model is sampled by default: the file's `ditrt.sampling` metadata if present, else
//! the backbone's official recipe; the command line may override each part.
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::models::ModelConfig;
use crate::sampling::{Guidance, Method, NoiseSchedule, SamplerConfig};
use crate::weights::SafetensorsFile;

/// Metadata key of a model's default sampling settings (JSON).
pub const SAMPLING_KEY: &str = "ditrt.sampling";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerName {
    Ddpm,
    Ddim,
    /// DPM-Solver++ (data prediction), U-ViT's singlestep layout.
    DpmSolver,
}

impl std::str::FromStr for SamplerName {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ddpm" => Ok(SamplerName::Ddpm),
            "ddim" => Ok(SamplerName::Ddim),
            "dpm-solver" => Ok(SamplerName::DpmSolver),
            other => Err(format!("unknown sampler '{other}' (expected ddpm, ddim or dpm-solver)")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub sampler: SamplerName,
    pub steps: usize,
    /// Guidance scale in the backbone's own convention (DiT: 1 = unguided; U-ViT: 0 = unguided).
    pub cfg_scale: f64,
    #[serde(default)]
    pub eta: f64,
}

impl Recipe {
    /// The official recipe of the backbone (BACKBONES.md, "Samplers").
    pub fn official(config: &ModelConfig) -> Recipe {
        match config {
            ModelConfig::Dit(_) => Recipe { sampler: SamplerName::Ddpm, steps: 250, cfg_scale: 4.0, eta: 0.0 },
        }
    }

    /// The file's recipe, or the official one when it has none.
    pub fn of_file(file: &SafetensorsFile, config: &ModelConfig) -> Result<Recipe> {
        match file.metadata(SAMPLING_KEY) {
            None => Ok(Recipe::official(config)),
            Some(json) => serde_json::from_str(json).map_err(|e| Error::Config {
                path: file.path().to_path_buf(),
                msg: format!("{SAMPLING_KEY}: {e}"),
            }),
        }
    }

    /// The sampler configuration for `config`'s backbone. `all_channels` makes DiT-style
    /// guidance act on every ε channel instead of the first 3.
    pub fn sampler_config(&self, config: &ModelConfig, all_channels: bool) -> Result<SamplerConfig> {
        let (schedule, guidance) = match config {
            ModelConfig::Dit(_) => {
                let guided = self.cfg_scale != 1.0 && config.num_classes().is_some();
                let guidance = if guided { Guidance::Dit { scale: self.cfg_scale, all_channels } } else { Guidance::None };
                (NoiseSchedule::Linear, guidance)
            }
        };
        let method = match self.sampler {
            SamplerName::Ddpm => Method::Ddpm,
            SamplerName::Ddim => Method::Ddim { eta: self.eta },
            SamplerName::DpmSolver => Method::DpmSolverPp,
        };
        let sampler = SamplerConfig { method, schedule, steps: self.steps, guidance };
        sampler.validate()?;
        Ok(sampler)
    }
}
