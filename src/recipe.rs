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

/// The noise schedule a model was trained with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleName {
    Linear,
    StableDiffusion,
    VpLinear,
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
    /// The training schedule; default by backbone (`default_schedule`).
    #[serde(default)]
    pub schedule: Option<ScheduleName>,
}

/// The schedule a backbone's released checkpoints were trained with. U-ViT's H models are
/// discrete-time on Stable Diffusion's betas, its other models continuous-time VP linear; a
/// config cannot tell them apart, but among the released checkpoints exactly the H models
/// lack the output conv. A file's `ditrt.sampling` can name the schedule explicitly.
fn default_schedule(config: &ModelConfig) -> NoiseSchedule {
    match config {
        ModelConfig::Uvit(c) if !c.conv => NoiseSchedule::StableDiffusion,
        ModelConfig::Uvit(_) => NoiseSchedule::VpLinear,
        ModelConfig::Dit(_) | ModelConfig::Tldm(_) | ModelConfig::Diffit(_) | ModelConfig::DiffitUnet(_) => NoiseSchedule::Linear,
        // Never sampled: sampler_config refuses the VAE first.
        ModelConfig::Vae(_) => NoiseSchedule::Linear,
    }
}

impl Recipe {
    /// The official recipe of the backbone (BACKBONES.md, "Samplers").
    pub fn official(config: &ModelConfig) -> Recipe {
        match config {
            ModelConfig::Dit(_) | ModelConfig::Tldm(_) => {
                Recipe { sampler: SamplerName::Ddpm, steps: 250, cfg_scale: 4.0, eta: 0.0, schedule: None }
            }
            // U-ViT's ImageNet-256 evaluation: a DPM-Solver with 50 evaluations, scale 0.4.
            ModelConfig::Uvit(_) => Recipe { sampler: SamplerName::DpmSolver, steps: 50, cfg_scale: 0.4, eta: 0.0, schedule: None },
            // DiffiT's sample.py: DDPM 250 steps as DiT; scale 4.4 ramped at 256 px (BACKBONES.md).
            ModelConfig::Diffit(_) => Recipe { sampler: SamplerName::Ddpm, steps: 250, cfg_scale: 4.4, eta: 0.0, schedule: None },
            // The image-space model has no official recipe: DDPM 250 steps, unguided.
            ModelConfig::DiffitUnet(_) => Recipe { sampler: SamplerName::Ddpm, steps: 250, cfg_scale: 1.0, eta: 0.0, schedule: None },
            // Never sampled: sampler_config refuses the VAE.
            ModelConfig::Vae(_) => Recipe { sampler: SamplerName::Ddpm, steps: 250, cfg_scale: 1.0, eta: 0.0, schedule: None },
        }
    }

    /// The file's recipe, or the official one when it has none.
    pub fn of_file(file: &SafetensorsFile, config: &ModelConfig) -> Result<Recipe> {
        match file.metadata(SAMPLING_KEY) {
            None => Ok(Recipe::official(config)),
            Some(json) => serde_json::from_str(json).map_err(|e| Error::Config {
                path: file.path().to_path_buf(),
                msg: crate::weights::one_line(&format!("{SAMPLING_KEY}: {e}")),
            }),
        }
    }

    /// The sampler configuration for `config`'s backbone. `all_channels` makes DiT-style
    /// guidance act on every ε channel instead of the first 3.
    pub fn sampler_config(&self, config: &ModelConfig, all_channels: bool) -> Result<SamplerConfig> {
        if let ModelConfig::Vae(_) = config {
            return Err(Error::invalid("a VAE decoder is not a denoiser: it cannot be sampled"));
        }
        // Guidance needs the null class; models without one sample unguided.
        let has_null = config.null_class().is_some();
        let guidance = match config {
            ModelConfig::Uvit(_) if has_null && self.cfg_scale != 0.0 => Guidance::Uvit { scale: self.cfg_scale },
            ModelConfig::Dit(_) | ModelConfig::Tldm(_) | ModelConfig::DiffitUnet(_) if has_null && self.cfg_scale != 1.0 => {
                Guidance::Dit { scale: self.cfg_scale, all_channels }
            }
            // diffit.py forward_with_cfg: the power-cosine ramp up to latent 32 (256 px), DiT's
            // constant scale above.
            ModelConfig::Diffit(c) if has_null && self.cfg_scale != 1.0 => {
                if c.input_size <= 32 {
                    Guidance::DiffitRamp { scale: self.cfg_scale, power: 4.0 }
                } else {
                    Guidance::Dit { scale: self.cfg_scale, all_channels }
                }
            }
            _ => Guidance::None,
        };
        let schedule = match self.schedule {
            Some(ScheduleName::Linear) => NoiseSchedule::Linear,
            Some(ScheduleName::StableDiffusion) => NoiseSchedule::StableDiffusion,
            Some(ScheduleName::VpLinear) => NoiseSchedule::VpLinear,
            None => default_schedule(config),
        };
        let method = match (self.sampler, schedule) {
            (SamplerName::Ddpm, _) => Method::Ddpm,
            (SamplerName::Ddim, _) => Method::Ddim { eta: self.eta },
            // U-ViT's continuous-time models are sampled with the ε-predicting DPM-Solver
            // (eval_ldm.py), the discrete ones with DPM-Solver++ (eval_ldm_discrete.py).
            (SamplerName::DpmSolver, NoiseSchedule::VpLinear) => Method::DpmSolver,
            (SamplerName::DpmSolver, _) => Method::DpmSolverPp,
        };
        let sampler = SamplerConfig { method, schedule, steps: self.steps, guidance };
        sampler.validate()?;
        Ok(sampler)
    }
}
