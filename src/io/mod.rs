//! Files in and out: safetensors (weights, fixtures), images (PNG grids, npz), atomic writes.
pub mod atomic;
pub mod image;
pub mod json_keys;
pub mod safetensors;
