//! From a model file to images: a backbone's graph as a sampler's denoiser, VAE decoding,
//! the bundled models, and sampling runs over image ranges.
pub mod bundled;
pub mod denoiser;
pub mod generate;
pub mod vae_decode;
