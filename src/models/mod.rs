//! Backbones: each file turns a config and its weights into a static graph over the op set.
//! A backbone is its config type implementing `Backbone`, plus one line in the registry below.
pub mod backbone;
pub mod clip_text;
pub mod conv_layers;
pub mod diffit;
pub mod diffit_block;
pub mod diffit_unet;
pub mod dit;
pub mod embedders;
pub mod flat_config;
pub mod layers;
pub mod modulation;
pub mod params;
pub mod patch_config;
pub mod sizes;
pub mod tldm;
pub mod uvit;
pub mod uvit_t2i;
pub mod uvit_trunk;
pub mod vae;
pub mod weight_source;
pub mod windows;

use std::ops::Deref;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::models::backbone::Backbone;

use crate::error::{one_line, Error, Result};
use crate::io::json_keys::check_unique_keys;
use crate::io::safetensors::{SafetensorsFile, CONFIG_KEY};

/// Declares `ModelConfig` (one variant per backbone, tagged by its `arch` in the JSON),
/// `KNOWN_ARCHS`, preset lookup by arch and the view of a config as its `Backbone`.
macro_rules! backbones {
    ($($(#[$doc:meta])* $variant:ident($config:ty) = $arch:literal,)*) => {
        /// A model's config as stored under `ditrt.config` in its safetensors metadata; its
        /// `Backbone` methods through `Deref`.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "arch")]
        pub enum ModelConfig {
            $($(#[$doc])* #[serde(rename = $arch)] $variant($config),)*
        }

        pub const KNOWN_ARCHS: &[&str] = &[$($arch),*];

        impl ModelConfig {
            /// An official (or, where no official exists, ditrt's) config by arch and preset name,
            /// e.g. ("dit", "DiT-XL/2"), ("uvit", "U-ViT-H/2-ImageNet256"), ("vae", "SD-VAE-KL-f8").
            pub fn preset(arch: &str, name: &str) -> Result<Self> {
                let config = match arch {
                    $($arch => <$config>::preset(name).map(ModelConfig::$variant),)*
                    other => return Err(unknown_arch(other)),
                };
                let known = match arch {
                    $($arch => <$config>::preset_names(),)*
                    _ => unreachable!("arch checked above"),
                };
                config.ok_or_else(|| Error::invalid(format!("unknown {arch} preset '{}' (known: {known})", one_line(name))))
            }

            /// The preset called `name` of whichever backbone has one (preset names are distinct
            /// across backbones), for commands that take a preset without an arch.
            pub fn preset_any(name: &str) -> Result<Self> {
                $(if let Some(config) = <$config>::preset(name) {
                    return Ok(ModelConfig::$variant(config));
                })*
                let known = [$(<$config>::preset_names()),*];
                Err(Error::invalid(format!("unknown preset '{}' (known: {})", one_line(name), known.join("; "))))
            }
        }

        impl Deref for ModelConfig {
            type Target = dyn Backbone;
            fn deref(&self) -> &Self::Target {
                match self {
                    $(ModelConfig::$variant(c) => c,)*
                }
            }
        }
    };
}

backbones! {
    Dit(dit::DitConfig) = "dit",
    Uvit(uvit::UvitConfig) = "uvit",
    /// U-ViT text-to-image: takes the text context (input `context`), no classes.
    UvitT2i(uvit_t2i::UvitT2iConfig) = "uvit_t2i",
    Tldm(tldm::TldmConfig) = "tldm",
    Diffit(diffit::DiffitConfig) = "diffit",
    DiffitUnet(diffit_unet::DiffitUnetConfig) = "diffit_unet",
    /// The SD VAE decoder: not a denoiser (input `x` is a latent, no `t` or `y`).
    Vae(vae::VaeConfig) = "vae",
    /// The CLIP text encoder: not a denoiser (input `input_ids`, output one vector per token).
    ClipText(clip_text::ClipTextConfig) = "clip_text",
}

impl ModelConfig {
    /// Parse a config; `origin` names where it came from in errors.
    pub fn from_json(json: &str, origin: &Path) -> Result<Self> {
        // Messages may quote the JSON (an unknown field's name): kept to one line.
        let err = |msg: String| Error::Config { path: origin.to_path_buf(), msg: one_line(&msg) };
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| err(format!("invalid JSON: {e}")))?;
        check_unique_keys(json).map_err(err)?;
        let arch = value.get("arch").and_then(|a| a.as_str()).ok_or_else(|| err("no \"arch\" field".into()))?;
        if !KNOWN_ARCHS.contains(&arch) {
            return Err(err(unknown_arch(arch).to_string()));
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
}

/// The error for an arch name no model answers to.
pub fn unknown_arch(name: &str) -> Error {
    Error::UnknownArch { arch: one_line(name), known: KNOWN_ARCHS.join(", ") }
}
