//! Files in and out: safetensors (weights, fixtures), images (PNG, grids), .npz files, PNG
//! folders, the image sink the sampler writes through, latents files, atomic writes.
pub mod atomic;
pub mod image;
pub mod json_keys;
pub mod latents;
pub mod npz;
pub mod png_folder;
pub mod safetensors;
pub mod sink;
