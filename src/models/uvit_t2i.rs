//! U-ViT text-to-image (baofff/U-ViT libs/uvit_t2i.py, the MS-COCO models): [time,
//! context_embed(context), patches] plus one learned position table over all of them, through
//! U-ViT's long-skip network (uvit_trunk.rs). The text enters only as tokens: `num_clip_token`
//! text-encoder states (CLIP ViT-L/14's last_hidden_state, pads included, no mask) through one
//! Linear clip_dim -> D with bias.
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::backbone::{denoiser_sampling, Backbone, ContextIo, Forward, GraphIo, ModelInput};
use crate::models::embedders::ContextEmbed;
use crate::models::flat_config::flat_config;
use crate::models::layers::TokenSpan;
use crate::models::params::Params;
use crate::models::sizes::{check_params, check_positive, MAX_SIZE};
use crate::models::uvit_trunk::{UvitCondition, UvitShape, UvitSizes, SIZES};
use crate::sampling::recipe::{BackboneSampling, GuidanceForm, SamplerName};
use crate::sampling::NoiseSchedule;
use crate::tensor::ImageGeometry;

/// The text model's own fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UvitText {
    /// Width of the text-encoder states (`context_embed` input).
    pub clip_dim: usize,
    /// Text tokens per sample (CLIP's context length, 77).
    pub num_clip_token: usize,
}

flat_config!(
    /// The official nnet config of configs/mscoco_uvit.py (`name` and `qkv_bias` = false aside).
    UvitT2iConfig { sizes: UvitSizes, text: UvitText } keys ["clip_dim", "num_clip_token"]
);

/// The released MS-COCO checkpoints: U-ViT-S/2 (configs/mscoco_uvit.py, depth 12) and its deep
/// variant (the README's `--config.nnet.depth=16`; the paper's 17 blocks).
pub const PRESETS: &[(&str, usize)] = &[("U-ViT-S/2-MSCOCO", 12), ("U-ViT-S/2-Deep-MSCOCO", 16)];

impl UvitT2iConfig {
    pub fn preset_names() -> String {
        PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
    }

    /// One of the released checkpoints by name: SD latents 32x32x4, patch 2, U-ViT-S widths,
    /// CLIP ViT-L/14 states (77 x 768), no time MLP, the output conv (uvit_t2i's default).
    pub fn preset(name: &str) -> Option<UvitT2iConfig> {
        let &(_, depth) = PRESETS.iter().find(|p| p.0 == name)?;
        let &(_, embed_dim, _, num_heads) = SIZES.iter().find(|s| s.0 == "S")?;
        Some(UvitT2iConfig {
            sizes: UvitSizes {
                img_size: 32,
                patch_size: 2,
                in_chans: 4,
                embed_dim,
                depth,
                num_heads,
                mlp_ratio: 4.0,
                mlp_time_embed: false,
                conv: true,
            },
            text: UvitText { clip_dim: 768, num_clip_token: 77 },
        })
    }

    fn context(&self) -> ContextIo {
        ContextIo { tokens: self.text.num_clip_token, dim: self.text.clip_dim }
    }

    /// The network's sizes: [time, text tokens, patches].
    fn shape(&self) -> UvitShape {
        UvitShape { sizes: self.sizes, cond_tokens: self.text.num_clip_token, time_first: true }
    }
}

impl Backbone for UvitT2iConfig {
    fn arch(&self) -> &'static str {
        "uvit_t2i"
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let arch = self.arch();
        check_positive(arch, &[("clip_dim", self.text.clip_dim), ("num_clip_token", self.text.num_clip_token)])?;
        self.shape().validate(arch, &[("clip_dim", self.text.clip_dim, MAX_SIZE), ("num_clip_token", self.text.num_clip_token, MAX_SIZE)])?;
        check_params(arch, &self.param_shapes())?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.shape().describe(&format!("text: {} tokens of width {}", self.text.num_clip_token, self.text.clip_dim))
    }

    fn macs_per_image(&self) -> f64 {
        self.shape().macs() + ContextEmbed::macs(self.context(), self.embed_dim)
    }

    /// No classes; guided through the empty prompt's context.
    fn io(&self) -> GraphIo {
        GraphIo {
            input: ModelInput::Image(ImageGeometry { channels: self.in_chans, height: self.img_size, width: self.img_size }),
            output_channels: self.in_chans,
            num_classes: None,
            null_class: None,
            context: Some(self.context()),
        }
    }

    /// The official MS-COCO evaluation (configs/mscoco_uvit.py, eval_t2i_discrete.py):
    /// DPM-Solver++ on Stable Diffusion's discrete betas, 50 evaluations, U-ViT scale 1.
    /// configs/mscoco_uvit.py's `scale_factor=0.23010`, what the MS-COCO models were trained
    /// with. The official sample script builds its autoencoder without one and so decodes with
    /// 0.18215; we decode with the training scale (see docs/models/uvit_t2i.md).
    fn latent_scale(&self) -> f32 {
        0.23010
    }

    fn sampling(&self) -> Result<BackboneSampling> {
        denoiser_sampling(self, (SamplerName::DpmSolver, 50, 1.0), NoiseSchedule::StableDiffusion, GuidanceForm::Uvit)
    }

    /// Official checkpoint keys, in checkpoint (module) order: `context_embed` after the time MLP.
    fn load(&self, p: Params) -> Result<Box<dyn Forward + '_>> {
        let (context, width) = (self.context(), self.embed_dim);
        self.shape().load(p, |p| Ok(TextTokens(ContextEmbed::load(p.pp("context_embed"), context, width)?)))
    }
}

/// The text tokens, right after the time token (input `context`).
struct TextTokens(ContextEmbed);

impl UvitCondition for TextTokens {
    fn apply(&self, g: &mut GraphBuilder, batch: usize, _dim: usize, seq: TokenSpan) {
        self.0.apply(g, batch, seq);
    }
}
