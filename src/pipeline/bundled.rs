//! Models built into the binary, so `ditrt sample` works with no files at hand: one small
//! class-conditional digits model per backbone, each trained by weights-tools/train_digits.py,
//! and a text-to-image one with its text encoder (weights-tools/train_t2i_digits.py), stored
//! like every converted checkpoint (official keys, `ditrt.config`, `ditrt.sampling`).
use crate::error::{Error, Result};
use crate::io::safetensors::SafetensorsFile;
use crate::pipeline::generate::{RecipeOverrides, SamplingModel};

pub struct BundledModel {
    /// Name for `--model`.
    pub name: &'static str,
    /// Path in the repository the bytes were built from.
    pub path: &'static str,
    bytes: &'static [u8],
    /// A text-conditioned model's text encoder (path, bytes).
    text_encoder: Option<(&'static str, &'static [u8])>,
}

macro_rules! bundled {
    ($name:literal, $path:literal) => {
        BundledModel { name: $name, path: $path, bytes: include_bytes!(concat!("../../", $path)), text_encoder: None }
    };
    ($name:literal, $path:literal, text_encoder: $text:literal) => {
        BundledModel {
            name: $name,
            path: $path,
            bytes: include_bytes!(concat!("../../", $path)),
            text_encoder: Some(($text, include_bytes!(concat!("../../", $text)))),
        }
    };
}

pub const BUNDLED: &[BundledModel] = &[
    bundled!("dit", "models/dit_digits.safetensors"),
    bundled!("uvit", "models/uvit_digits.safetensors"),
    bundled!("diffit", "models/diffit_digits.safetensors"),
    bundled!("tldm", "models/tldm_digits.safetensors"),
    bundled!("uvit_t2i", "models/uvit_t2i_digits.safetensors", text_encoder: "models/clip_digits.safetensors"),
];

impl BundledModel {
    pub fn open(&self) -> Result<SafetensorsFile> {
        SafetensorsFile::from_static(self.path, self.bytes)
    }

    /// One line for `ditrt sample --list`: name, backbone, parameters, default sampler.
    pub fn summary(&self) -> Result<String> {
        let SamplingModel { config, sampler, .. } = SamplingModel::new(self.open()?, &RecipeOverrides::default())?;
        Ok(format!(
            "{:<7} {:<7} {:>6.0}k params  {}  ({}; built in from {})",
            self.name,
            config.arch(),
            config.param_count() as f64 / 1e3,
            sampler,
            config.describe(),
            self.path
        ))
    }
}

fn find(name: &str) -> Result<&'static BundledModel> {
    BUNDLED.iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = BUNDLED.iter().map(|m| m.name).collect();
        Error::invalid(format!("no bundled model '{name}' (bundled: {}; see `ditrt sample --list`)", names.join(", ")))
    })
}

/// The bundled model called `name`, opened.
pub fn open(name: &str) -> Result<SafetensorsFile> {
    find(name)?.open()
}

/// The text encoder of the bundled text-conditioned model called `name`.
pub fn open_text_encoder(name: &str) -> Result<SafetensorsFile> {
    match find(name)?.text_encoder {
        Some((path, bytes)) => SafetensorsFile::from_static(path, bytes),
        None => Err(Error::invalid(format!("the bundled model '{name}' takes no text"))),
    }
}
