//! Models built into the binary, so `ditrt sample` works with no files at hand.
use crate::error::{Error, Result};
use crate::weights::SafetensorsFile;

pub struct BundledModel {
    /// Name for `--model`.
    pub name: &'static str,
    /// Path in the repository the bytes were built from.
    pub path: &'static str,
    pub summary: &'static str,
    bytes: &'static [u8],
}

pub const BUNDLED: &[BundledModel] = &[BundledModel {
    name: "dit",
    path: "models/dit_digits.safetensors",
    summary: "class-conditional DiT on 16x16 scikit-learn digits (weights-tools/train_digits.py)",
    bytes: include_bytes!("../models/dit_digits.safetensors"),
}];

/// The bundled model called `name`, opened.
pub fn open(name: &str) -> Result<SafetensorsFile> {
    let model = BUNDLED.iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = BUNDLED.iter().map(|m| m.name).collect();
        Error::invalid(format!("no bundled model '{name}' (bundled: {})", names.join(", ")))
    })?;
    SafetensorsFile::from_static(model.path, model.bytes)
}
