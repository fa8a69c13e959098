//! U-ViT (Bao et al., arXiv 2209.12152) as the released checkpoints compute it
//! (baofff/U-ViT libs/uvit.py): every input is a token, [label (if conditional), time,
//! patches] plus a learned position table, through U-ViT's long-skip network (uvit_trunk.rs).
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::backbone::{denoiser_sampling, Backbone, Forward, GraphIo, ModelInput};
use crate::models::embedders::LabelTable;
use crate::models::flat_config::flat_config;
use crate::models::layers::{copy_tokens, TokenSpan};
use crate::models::params::Params;
use crate::models::sizes::{check_params, MAX_SIZE};
use crate::models::uvit_trunk::{UvitCondition, UvitShape, UvitSizes, SIZES};
use crate::sampling::recipe::{BackboneSampling, GuidanceForm, SamplerName};
use crate::sampling::NoiseSchedule;
use crate::tensor::{DType, ImageGeometry};

/// The class-conditional model's own fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UvitClasses {
    /// Classes without the null class; 0 = unconditional (official num_classes -1).
    pub num_classes: usize,
    /// The label table has one more row, the null class used for guidance (official
    /// num_classes 1001 = 1000 ImageNet classes + null).
    pub null_class: bool,
}

flat_config!(
    /// U-ViT's config: the official nnet fields, `num_classes` counting real classes.
    UvitConfig { sizes: UvitSizes, classes: UvitClasses } keys ["num_classes", "null_class"]
);

/// A released checkpoint (configs/*.py); the size gives width, depth and heads.
pub struct Preset {
    pub name: &'static str,
    pub size: &'static str,
    pub img_size: usize,
    pub patch_size: usize,
    pub in_chans: usize,
    pub num_classes: usize,
    pub null_class: bool,
    pub conv: bool,
}

/// Pixel-space models (CIFAR-10, CelebA 64, ImageNet 64) and the ImageNet 256/512 latent
/// models (4-channel latents at 1/8 resolution; the huge ones drop the output conv).
pub const PRESETS: &[Preset] = &[
    Preset { name: "U-ViT-S/2-CIFAR10", size: "S", img_size: 32, patch_size: 2, in_chans: 3, num_classes: 0, null_class: false, conv: true },
    Preset { name: "U-ViT-S/4-CelebA64", size: "S", img_size: 64, patch_size: 4, in_chans: 3, num_classes: 0, null_class: false, conv: true },
    Preset { name: "U-ViT-M/4-ImageNet64", size: "M", img_size: 64, patch_size: 4, in_chans: 3, num_classes: 1000, null_class: false, conv: true },
    Preset { name: "U-ViT-L/4-ImageNet64", size: "L", img_size: 64, patch_size: 4, in_chans: 3, num_classes: 1000, null_class: false, conv: true },
    Preset { name: "U-ViT-L/2-ImageNet256", size: "L", img_size: 32, patch_size: 2, in_chans: 4, num_classes: 1000, null_class: true, conv: true },
    Preset { name: "U-ViT-H/2-ImageNet256", size: "H", img_size: 32, patch_size: 2, in_chans: 4, num_classes: 1000, null_class: true, conv: false },
    Preset { name: "U-ViT-L/4-ImageNet512", size: "L", img_size: 64, patch_size: 4, in_chans: 4, num_classes: 1000, null_class: true, conv: true },
    Preset { name: "U-ViT-H/4-ImageNet512", size: "H", img_size: 64, patch_size: 4, in_chans: 4, num_classes: 1000, null_class: true, conv: false },
];

impl UvitConfig {
    /// One of the released checkpoints by name, e.g. "U-ViT-H/2-ImageNet256".
    pub fn preset_names() -> String {
        PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
    }

    pub fn preset(name: &str) -> Option<UvitConfig> {
        let p = PRESETS.iter().find(|p| p.name == name)?;
        let &(_, embed_dim, depth, num_heads) = SIZES.iter().find(|s| s.0 == p.size)?;
        Some(UvitConfig {
            sizes: UvitSizes {
                img_size: p.img_size,
                patch_size: p.patch_size,
                in_chans: p.in_chans,
                embed_dim,
                depth,
                num_heads,
                mlp_ratio: 4.0,
                mlp_time_embed: false,
                conv: p.conv,
            },
            classes: UvitClasses { num_classes: p.num_classes, null_class: p.null_class },
        })
    }

    pub fn is_conditional(&self) -> bool {
        self.classes.num_classes > 0
    }

    /// Rows of `label_emb`.
    fn label_rows(&self) -> usize {
        self.classes.num_classes + usize::from(self.classes.null_class)
    }

    /// The network's sizes: [label (if conditional), time, patches].
    fn shape(&self) -> UvitShape {
        UvitShape { sizes: self.sizes, cond_tokens: usize::from(self.is_conditional()), time_first: false }
    }
}

impl Backbone for UvitConfig {
    fn arch(&self) -> &'static str {
        "uvit"
    }

    fn validate(&self) -> std::result::Result<(), String> {
        self.shape().validate("uvit", &[("num_classes", self.classes.num_classes, MAX_SIZE)])?;
        if self.classes.null_class && !self.is_conditional() {
            return Err("uvit: null_class needs num_classes > 0".into());
        }
        check_params("uvit", &self.param_shapes())?;
        Ok(())
    }

    fn describe(&self) -> String {
        let classes = match (self.classes.num_classes, self.classes.null_class) {
            (0, _) => "unconditional".to_string(),
            (k, true) => format!("{k} classes + null"),
            (k, false) => format!("{k} classes"),
        };
        self.shape().describe(&classes)
    }

    /// The label table costs no multiply-adds.
    fn macs_per_image(&self) -> f64 {
        self.shape().macs()
    }

    /// The pixel-space ImageNet-64 models have classes but no null class.
    fn io(&self) -> GraphIo {
        let classes = self.is_conditional().then_some(self.classes.num_classes);
        GraphIo {
            input: ModelInput::Image(ImageGeometry { channels: self.in_chans, height: self.img_size, width: self.img_size }),
            output_channels: self.in_chans,
            num_classes: classes,
            null_class: classes.filter(|_| self.classes.null_class).map(|k| k as u32),
            context: None,
        }
    }

    /// U-ViT's ImageNet-256 evaluation: a DPM-Solver with 50 evaluations, scale 0.4. Its H
    /// models are discrete-time on Stable Diffusion's betas, its other models continuous-time
    /// VP linear; a config cannot tell them apart, but among the released checkpoints exactly
    /// the H models lack the output conv.
    fn sampling(&self) -> Result<BackboneSampling> {
        let schedule = if self.conv { NoiseSchedule::VpLinear } else { NoiseSchedule::StableDiffusion };
        denoiser_sampling(self, (SamplerName::DpmSolver, 50, 0.4), schedule, GuidanceForm::Uvit)
    }

    /// Official checkpoint keys, in checkpoint (module) order: `label_emb` after the time MLP.
    fn load(&self, p: Params) -> Result<Box<dyn Forward + '_>> {
        let rows = self.label_rows();
        let conditional = self.is_conditional();
        self.shape().load(p, |p| Ok(LabelToken(if conditional { Some(LabelTable::load(p.pp("label_emb"), rows, self.embed_dim)?) } else { None })))
    }
}

/// The label token, first in the sequence (input `y`), where the model is conditional.
struct LabelToken(Option<LabelTable>);

impl UvitCondition for LabelToken {
    fn apply(&self, g: &mut GraphBuilder, batch: usize, dim: usize, seq: TokenSpan) {
        if let Some(table) = &self.0 {
            let y = g.input("y", [batch], DType::U32);
            let label = table.apply(g, y, batch);
            copy_tokens(g, batch, 1, dim, TokenSpan::whole(label, 1), seq);
        }
    }
}
