//! What every backbone's config answers: its sizes and cost, its inputs and classes, its
//! official sampling, and its parameters, loaded by one function in checkpoint order that both
//! lists them (`param_shapes`, a recording binder) and binds them for `build`.
use crate::error::{Error, Result};
use crate::graph::{Graph, GraphBuilder};
use crate::models::params::{self, Params};
use crate::models::weight_source::WeightSource;
use crate::sampling::recipe::{BackboneSampling, GuidanceForm, Recipe, SamplerName};
use crate::sampling::NoiseSchedule;
use crate::tensor::{DType, ImageGeometry};

/// A backbone, as its config: `ModelConfig` derefs to the one it holds.
pub trait Backbone {
    /// The `arch` tag of its `ditrt.config`.
    fn arch(&self) -> &'static str;

    /// Each size bounded before anything is derived from it (models/sizes.rs), the parameter
    /// count last; the error names the arch and the field.
    fn validate(&self) -> std::result::Result<(), String>;

    /// One-line summary of the architecture.
    fn describe(&self) -> String;

    /// Multiply-adds of one forward for one image.
    fn macs_per_image(&self) -> f64;

    /// What its graph takes and gives.
    fn io(&self) -> GraphIo;

    /// The factor a latent model's training multiplied the VAE's latents by: its samples are
    /// divided by it before decoding. Stable Diffusion's 0.18215 unless the backbone says.
    fn latent_scale(&self) -> f32 {
        SD_LATENT_SCALE
    }

    /// Shape of the input x (and of the prediction's first channels) per sample; an error for
    /// a model that takes token ids instead (a text encoder).
    fn input_geometry(&self) -> Result<ImageGeometry> {
        match self.io().input {
            ModelInput::Image(geometry) => Ok(geometry),
            ModelInput::Tokens { .. } => Err(Error::invalid(format!("{} takes token ids, not an image", self.arch()))),
        }
    }

    fn output_channels(&self) -> usize {
        self.io().output_channels
    }

    fn num_classes(&self) -> Option<usize> {
        self.io().num_classes
    }

    fn null_class(&self) -> Option<u32> {
        self.io().null_class
    }

    /// What sampling needs of the backbone: official recipe, training schedule, guidance form.
    fn sampling(&self) -> Result<BackboneSampling>;

    /// Binds every parameter through `p`, in checkpoint order; what it returns records the
    /// forward pass.
    fn load(&self, p: Params) -> Result<Box<dyn Forward + '_>>;

    /// Every parameter by official key, in checkpoint order (`load` with a recording binder).
    fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        params::record(|p| self.load(p))
    }

    fn param_count(&self) -> usize {
        self.param_shapes().iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }

    /// Tensors a model file carries beside its parameters, read by no graph (clip_text: its
    /// tokenizer's merges); `build` accepts them in a weights file.
    fn data_keys(&self) -> &'static [&'static str] {
        &[]
    }

    /// The forward pass for `batch` samples stored as `dtype` (`Forward::forward` says its
    /// inputs); `weights` must hold exactly the model's parameters (and its `data_keys`).
    fn build(&self, weights: &mut dyn WeightSource, batch: usize, dtype: DType) -> Result<Graph> {
        if batch == 0 {
            return Err(Error::invalid("batch must be at least 1"));
        }
        self.validate().map_err(Error::invalid)?;
        let mut g = GraphBuilder::new(dtype);
        let model = params::bind(&mut g, weights, |p| self.load(p))?;
        model.forward(&mut g, batch);
        let graph = g.finish()?;
        weights.finish(self.data_keys())?;
        Ok(graph)
    }
}

/// Stable Diffusion's latent scale factor (the KL-f8 VAE's latents times this have about unit
/// variance), which DiT, U-ViT's ImageNet models, DiffiT and the transformer LDM train with.
pub const SD_LATENT_SCALE: f32 = 0.18215;

/// What a backbone's graph takes and gives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GraphIo {
    /// Its main input per sample: the image x (the VAE's is its latent), or a text encoder's
    /// token ids.
    pub input: ModelInput,
    /// Channels of the raw output (2C with learned sigma; the VAE's image channels; a text
    /// encoder's width: it outputs one vector per token).
    pub output_channels: usize,
    /// Number of classes, without the null class; None if unconditional.
    pub num_classes: Option<usize>,
    /// Id of the null class used for guidance, where the model has one (U-ViT's pixel-space
    /// ImageNet-64 models have classes but none).
    pub null_class: Option<u32>,
    /// The text context a text-conditioned denoiser takes as input `context`; None otherwise.
    pub context: Option<ContextIo>,
}

/// A text-conditioned denoiser's context input: `tokens` text-encoder states of width `dim`
/// per sample (CLIP's 77 x 768 for U-ViT's MS-COCO models).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextIo {
    pub tokens: usize,
    pub dim: usize,
}

/// A graph's main input per sample (`GraphIo::input`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ModelInput {
    /// `x` [B, C, H, W] of this geometry.
    Image(ImageGeometry),
    /// `input_ids` u32 [B, len], each id below `vocab` (a text encoder: a tokenizer's ids,
    /// padded to `len`).
    Tokens { len: usize, vocab: usize },
}

/// A backbone with its parameters bound.
pub trait Forward {
    /// Records the forward pass for `batch` samples. Inputs: `x` [B, C, H, W], `t` f32 [B],
    /// `y` u32 [B] (class-conditional models only), `context` f32 [B, tokens, dim]
    /// (text-conditioned models only, `GraphIo::context`; stored like `x`); output `out`
    /// [B, C_out, H, W]. The VAE takes only `x` (the latent) and outputs the decoded image. A
    /// text encoder takes only `input_ids` u32 [B, len] and outputs `out` [B, len, width] (one
    /// vector per token).
    fn forward(&self, g: &mut GraphBuilder, batch: usize);
}

/// A denoiser's sampling: the official (sampler, steps, scale) with eta 0, its training schedule
/// and guidance form. Guidance needs an unconditional input: the null class, or for a text
/// model the empty prompt's context; a model with neither samples unguided.
pub fn denoiser_sampling(
    backbone: &dyn Backbone,
    (sampler, steps, cfg_scale): (SamplerName, usize, f64),
    schedule: NoiseSchedule,
    guidance: GuidanceForm,
) -> Result<BackboneSampling> {
    Ok(BackboneSampling {
        official: Recipe { sampler, steps, cfg_scale, eta: 0.0, schedule: None },
        schedule,
        guidance: if backbone.null_class().is_some() || backbone.io().context.is_some() { guidance } else { GuidanceForm::Unguided },
    })
}
