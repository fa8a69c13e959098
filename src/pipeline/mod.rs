//! From a model file to images: a backbone's graph as a sampler's denoiser, prompts through
//! a text encoder, VAE decoding, the bundled models, and sampling runs over image ranges, in
//! launches of the largest batch the backend can bind.
pub mod batch_fit;
pub mod bundled;
pub mod denoiser;
pub mod generate;
pub mod noise_file;
pub mod prompts;
pub mod text_encoder;
pub mod vae_decode;
