//! Files in and out: safetensors (weights, fixtures), images (PNG, grids), .npz files, PNG
//! folders, the image sink the sampler writes through, atomic writes.
pub mod atomic;
pub mod image;
pub mod json_keys;
pub mod npz;
pub mod png_folder;
pub mod safetensors;
pub mod sink;
