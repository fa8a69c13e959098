//! ditrt: an inference engine for the transformer backbones of diffusion models.
//!
//! Layers (dependencies run one way): models -> graph -> op set (`backend::Backend`) <- cpu.
pub mod backend;
pub mod bench;
pub mod bundled;
pub mod decode;
pub mod error;
pub mod finite;
pub mod generate;
pub mod graph;
pub mod image;
pub mod models;
pub mod recipe;
pub mod sampling;
pub mod soak;
pub mod tensor;
pub mod verify;
pub mod weights;

pub use error::{Error, Result};
