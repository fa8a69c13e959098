//! Backbones: each file turns a config and its weights into a static graph over the op set.
pub mod conv_layers;
pub mod diffit;
pub mod diffit_block;
pub mod diffit_unet;
pub mod dit;
pub mod embedders;
pub mod layers;
pub mod sizes;
pub mod tldm;
pub mod uvit;
pub mod vae;
pub mod weight_source;
pub mod windows;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{one_line, Error, Result};
use crate::graph::Graph;
use crate::io::safetensors::{SafetensorsFile, CONFIG_KEY};
use crate::models::weight_source::WeightSource;
use crate::sampling::recipe::{BackboneSampling, GuidanceForm, Recipe, SamplerName};
use crate::sampling::NoiseSchedule;
use crate::tensor::{DType, ImageGeometry};

/// A model's config as stored under `ditrt.config` in its safetensors metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "lowercase")]
pub enum ModelConfig {
    Dit(dit::DitConfig),
    Uvit(uvit::UvitConfig),
    Tldm(tldm::TldmConfig),
    Diffit(diffit::DiffitConfig),
    #[serde(rename = "diffit_unet")]
    DiffitUnet(diffit_unet::DiffitUnetConfig),
    /// The SD VAE decoder: not a denoiser (input `x` is a latent, no `t` or `y`).
    Vae(vae::VaeConfig),
}

pub const KNOWN_ARCHS: &[&str] = &["dit", "uvit", "tldm", "diffit", "diffit_unet", "vae"];

impl ModelConfig {
    /// An official (or, where no official exists, ditrt's) config by arch and preset name,
    /// e.g. ("dit", "DiT-XL/2"), ("uvit", "U-ViT-H/2-ImageNet256"), ("vae", "SD-VAE-KL-f8").
    pub fn preset(arch: &str, name: &str) -> Result<Self> {
        let config = match arch {
            "dit" => dit::DitConfig::preset(name).map(ModelConfig::Dit),
            "uvit" => uvit::UvitConfig::preset(name).map(ModelConfig::Uvit),
            "tldm" => tldm::TldmConfig::preset(name).map(ModelConfig::Tldm),
            "diffit" => diffit::DiffitConfig::preset(name).map(ModelConfig::Diffit),
            "diffit_unet" => diffit_unet::DiffitUnetConfig::preset(name).map(ModelConfig::DiffitUnet),
            "vae" => vae::VaeConfig::preset(name).map(ModelConfig::Vae),
            other => return Err(unknown_arch(other)),
        };
        config.ok_or_else(|| Error::invalid(format!("unknown {arch} preset '{name}'")))
    }

    /// Parse a config; `origin` names where it came from in errors.
    pub fn from_json(json: &str, origin: &Path) -> Result<Self> {
        // Messages may quote the JSON (an unknown field's name): kept to one line.
        let err = |msg: String| Error::Config { path: origin.to_path_buf(), msg: one_line(&msg) };
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let arch = value.get("arch").and_then(|a| a.as_str()).ok_or_else(|| err("no \"arch\" field".into()))?;
        if !KNOWN_ARCHS.contains(&arch) {
            return Err(unknown_arch(arch));
        }
        let config: ModelConfig = serde_json::from_value(value.clone()).map_err(|e| err(format!("{arch}: {e}")))?;
        config.validate().map_err(err)?;
        Ok(config)
    }

    /// The config in a weights file's metadata.
    pub fn from_file(file: &SafetensorsFile) -> Result<Self> {
        let json = file.metadata(CONFIG_KEY).ok_or_else(|| Error::Config {
            path: file.path().to_path_buf(),
            msg: format!("no '{CONFIG_KEY}' metadata; convert the checkpoint with weights-tools/convert.py"),
        })?;
        Self::from_json(json, file.path())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("config serialises")
    }

    pub fn arch(&self) -> &'static str {
        match self {
            ModelConfig::Dit(_) => "dit",
            ModelConfig::Uvit(_) => "uvit",
            ModelConfig::Tldm(_) => "tldm",
            ModelConfig::Diffit(_) => "diffit",
            ModelConfig::DiffitUnet(_) => "diffit_unet",
            ModelConfig::Vae(_) => "vae",
        }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        match self {
            ModelConfig::Dit(c) => c.validate(),
            ModelConfig::Uvit(c) => c.validate(),
            ModelConfig::Tldm(c) => c.validate(),
            ModelConfig::Diffit(c) => c.validate(),
            ModelConfig::DiffitUnet(c) => c.validate(),
            ModelConfig::Vae(c) => c.validate(),
        }
    }

    /// Every parameter by official key, in checkpoint order.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        match self {
            ModelConfig::Dit(c) => c.param_shapes(),
            ModelConfig::Uvit(c) => c.param_shapes(),
            ModelConfig::Tldm(c) => c.param_shapes(),
            ModelConfig::Diffit(c) => c.param_shapes(),
            ModelConfig::DiffitUnet(c) => c.param_shapes(),
            ModelConfig::Vae(c) => c.param_shapes(),
        }
    }

    pub fn param_count(&self) -> usize {
        self.param_shapes().iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }

    /// Multiply-adds of one forward for one image.
    pub fn macs_per_image(&self) -> f64 {
        match self {
            ModelConfig::Dit(c) => c.macs_per_image(),
            ModelConfig::Uvit(c) => c.macs_per_image(),
            ModelConfig::Tldm(c) => c.macs_per_image(),
            ModelConfig::Diffit(c) => c.macs_per_image(),
            ModelConfig::DiffitUnet(c) => c.macs_per_image(),
            ModelConfig::Vae(c) => c.macs_per_image(),
        }
    }

    /// Shape of the input x (and of the prediction's first channels) per sample; the VAE's is
    /// its latent.
    pub fn input_geometry(&self) -> ImageGeometry {
        match self {
            ModelConfig::Dit(c) => ImageGeometry { channels: c.in_channels, height: c.input_size, width: c.input_size },
            ModelConfig::Uvit(c) => ImageGeometry { channels: c.in_chans, height: c.img_size, width: c.img_size },
            ModelConfig::Tldm(c) => ImageGeometry { channels: c.in_channels, height: c.input_size, width: c.input_size },
            ModelConfig::Diffit(c) => ImageGeometry { channels: c.in_channels, height: c.input_size, width: c.input_size },
            ModelConfig::DiffitUnet(c) => ImageGeometry { channels: c.in_channels, height: c.image_size, width: c.image_size },
            ModelConfig::Vae(c) => ImageGeometry { channels: c.latent_channels, height: c.latent_size, width: c.latent_size },
        }
    }

    /// Channels of the raw output (2C with learned sigma; the VAE's image channels).
    pub fn output_channels(&self) -> usize {
        match self {
            ModelConfig::Dit(c) => c.out_channels(),
            ModelConfig::Uvit(c) => c.in_chans,
            ModelConfig::Tldm(c) => c.out_channels(),
            ModelConfig::Diffit(c) => c.out_channels(),
            ModelConfig::DiffitUnet(c) => c.out_channels(),
            ModelConfig::Vae(c) => c.out_channels,
        }
    }

    /// Number of classes, without the null class (which has id `num_classes` where the model has
    /// one: U-ViT's pixel-space ImageNet-64 models have none); None if unconditional.
    pub fn num_classes(&self) -> Option<usize> {
        match self {
            ModelConfig::Dit(c) => Some(c.num_classes),
            ModelConfig::Uvit(c) => c.is_conditional().then_some(c.num_classes),
            ModelConfig::Tldm(c) => Some(c.num_classes),
            ModelConfig::Diffit(c) => Some(c.num_classes),
            ModelConfig::DiffitUnet(c) => (c.num_classes > 0).then_some(c.num_classes),
            ModelConfig::Vae(_) => None,
        }
    }

    /// Id of the null class used for guidance, where the model has one.
    pub fn null_class(&self) -> Option<u32> {
        match self {
            ModelConfig::Dit(c) => Some(c.num_classes as u32),
            ModelConfig::Uvit(c) => (c.is_conditional() && c.null_class).then_some(c.num_classes as u32),
            ModelConfig::Tldm(c) => Some(c.num_classes as u32),
            ModelConfig::Diffit(c) => Some(c.num_classes as u32),
            ModelConfig::DiffitUnet(c) => (c.num_classes > 0).then_some(c.num_classes as u32),
            ModelConfig::Vae(_) => None,
        }
    }

    /// One-line summary of the architecture.
    pub fn describe(&self) -> String {
        match self {
            ModelConfig::Dit(c) => c.describe(),
            ModelConfig::Uvit(c) => c.describe(),
            ModelConfig::Tldm(c) => c.describe(),
            ModelConfig::Diffit(c) => c.describe(),
            ModelConfig::DiffitUnet(c) => c.describe(),
            ModelConfig::Vae(c) => c.describe(),
        }
    }

    /// Record the forward pass for `batch` samples stored as `dtype`. Inputs: `x` [B, C, H, W],
    /// `t` f32 [B], `y` u32 [B] (class-conditional models only); output `out` [B, C_out, H, W].
    /// The VAE takes only `x` (the latent) and outputs the decoded image.
    pub fn build(&self, weights: &mut dyn WeightSource, batch: usize, dtype: DType) -> Result<Graph> {
        if batch == 0 {
            return Err(Error::invalid("batch must be at least 1"));
        }
        let graph = match self {
            ModelConfig::Dit(c) => dit::build(c, weights, batch, dtype)?,
            ModelConfig::Uvit(c) => uvit::build(c, weights, batch, dtype)?,
            ModelConfig::Tldm(c) => tldm::build(c, weights, batch, dtype)?,
            ModelConfig::Diffit(c) => diffit::build(c, weights, batch, dtype)?,
            ModelConfig::DiffitUnet(c) => diffit_unet::build(c, weights, batch, dtype)?,
            ModelConfig::Vae(c) => vae::build(c, weights, batch, dtype)?,
        };
        weights.finish()?;
        Ok(graph)
    }

    /// What sampling needs of the backbone: official recipe, training schedule, guidance form.
    /// The VAE decoder is not a denoiser and has none.
    pub fn sampling(&self) -> Result<BackboneSampling> {
        let recipe = |sampler, steps, cfg_scale| Recipe { sampler, steps, cfg_scale, eta: 0.0, schedule: None };
        // Guidance needs the null class; models without one sample unguided.
        let guided = |form| {
            if self.null_class().is_some() {
                form
            } else {
                GuidanceForm::Unguided
            }
        };
        let (official, schedule, guidance) = match self {
            ModelConfig::Dit(_) | ModelConfig::Tldm(_) => (recipe(SamplerName::Ddpm, 250, 4.0), NoiseSchedule::Linear, guided(GuidanceForm::Dit)),
            // U-ViT's ImageNet-256 evaluation: a DPM-Solver with 50 evaluations, scale 0.4. Its
            // H models are discrete-time on Stable Diffusion's betas, its other models
            // continuous-time VP linear; a config cannot tell them apart, but among the released
            // checkpoints exactly the H models lack the output conv.
            ModelConfig::Uvit(c) => (
                recipe(SamplerName::DpmSolver, 50, 0.4),
                if c.conv { NoiseSchedule::VpLinear } else { NoiseSchedule::StableDiffusion },
                guided(GuidanceForm::Uvit),
            ),
            // DiffiT's sample.py: DDPM 250 steps as DiT; scale 4.4 with forward_with_cfg's
            // power-cosine ramp up to latent 32 (256 px), DiT's constant scale above.
            ModelConfig::Diffit(c) => (
                recipe(SamplerName::Ddpm, 250, 4.4),
                NoiseSchedule::Linear,
                guided(if c.input_size <= 32 { GuidanceForm::DiffitRamp { power: 4.0 } } else { GuidanceForm::Dit }),
            ),
            // The image-space model has no official recipe: DDPM 250 steps, unguided.
            ModelConfig::DiffitUnet(_) => (recipe(SamplerName::Ddpm, 250, 1.0), NoiseSchedule::Linear, guided(GuidanceForm::Dit)),
            ModelConfig::Vae(_) => return Err(Error::invalid("a VAE decoder is not a denoiser: it cannot be sampled")),
        };
        Ok(BackboneSampling { official, schedule, guidance })
    }
}

/// The error for an arch name no model answers to.
pub fn unknown_arch(name: &str) -> Error {
    Error::UnknownArch { arch: one_line(name), known: KNOWN_ARCHS.join(", ") }
}
