//! How a model is sampled by default: the file's `ditrt.sampling` metadata if present, else
//! the backbone's official recipe; the command line may override each part.
use serde::Deserialize;

use crate::error::{one_line, Error, Result};
use crate::io::json_keys::check_unique_keys;
use crate::io::safetensors::SafetensorsFile;
use crate::sampling::{Guidance, Method, NoiseSchedule, SamplerConfig};

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

/// How a backbone guides: the form of the official code, given the scale of a recipe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GuidanceForm {
    /// No null class: sampled unguided whatever the scale.
    Unguided,
    /// DiT's ε_u + s(ε_c − ε_u); 1 = off.
    Dit,
    /// U-ViT's (1 + s)ε_c − sε_u; 0 = off.
    Uvit,
    /// DiffiT's power-cosine ramp of DiT's form (diffit.py forward_with_cfg); 1 = off.
    DiffitRamp { power: f64 },
}

impl GuidanceForm {
    /// The backbone's own scale for a scale in `--cfg`'s convention (diffusers' and DiT's:
    /// u + s(c − u), 1 = off): U-ViT's c + s'(c − u) is that with s' = s − 1.
    pub fn native_scale(self, uniform: f64) -> f64 {
        match self {
            GuidanceForm::Uvit => uniform - 1.0,
            GuidanceForm::Unguided | GuidanceForm::Dit | GuidanceForm::DiffitRamp { .. } => uniform,
        }
    }
}

/// What sampling needs to know of a backbone; the model layer says it (`models::Backbone`).
#[derive(Clone, Debug, PartialEq)]
pub struct BackboneSampling {
    /// The official recipe (the backbone's released sampling script), used when a file has none.
    pub official: Recipe,
    /// The schedule the released checkpoints were trained with, unless a recipe names one.
    pub schedule: NoiseSchedule,
    pub guidance: GuidanceForm,
}

impl Recipe {
    /// The file's recipe, or the official one when it has none.
    pub fn of_file(file: &SafetensorsFile, backbone: &BackboneSampling) -> Result<Recipe> {
        match file.metadata(SAMPLING_KEY) {
            None => Ok(backbone.official.clone()),
            Some(json) => check_unique_keys(json)
                .map_err(|e| e.to_string())
                .and_then(|_| serde_json::from_str(json).map_err(|e| e.to_string()))
                .map_err(|e| Error::Config { path: file.path().to_path_buf(), msg: one_line(&format!("{SAMPLING_KEY}: {e}")) }),
        }
    }

    /// The sampler configuration for a backbone. `all_channels` makes DiT-style guidance act
    /// on every ε channel instead of the first 3.
    pub fn sampler_config(&self, backbone: &BackboneSampling, all_channels: bool) -> Result<SamplerConfig> {
        let scale = self.cfg_scale;
        let guidance = match backbone.guidance {
            GuidanceForm::Uvit if scale != 0.0 => Guidance::Uvit { scale },
            GuidanceForm::Dit if scale != 1.0 => Guidance::Dit { scale, all_channels },
            GuidanceForm::DiffitRamp { power } if scale != 1.0 => Guidance::DiffitRamp { scale, power },
            _ => Guidance::None,
        };
        let schedule = match self.schedule {
            Some(ScheduleName::Linear) => NoiseSchedule::Linear,
            Some(ScheduleName::StableDiffusion) => NoiseSchedule::StableDiffusion,
            Some(ScheduleName::VpLinear) => NoiseSchedule::VpLinear,
            None => backbone.schedule,
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
