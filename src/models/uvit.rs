//! U-ViT (Bao et al., arXiv 2209.12152) as the released checkpoints compute it
//! (baofff/U-ViT libs/uvit.py): every input is a token, [label (if conditional), time,
//! patches] plus a learned position table; depth/2 in-blocks, a mid-block and depth/2
//! out-blocks joined by long skips taken last-in-first-out; LN -> decoder_pred -> drop the
//! extra tokens -> unpatchify -> optional 3x3 conv.
use serde::{Deserialize, Serialize};

use crate::backend::{Activation, Add, Conv2d, Op, PatchGeometry, Patchify, SkipConcatLinear, TimestepEmbedding, Unpatchify, View};
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::backbone::{denoiser_sampling, Backbone, Forward, GraphIo, ModelInput};
use crate::models::embedders::LabelTable;
use crate::models::layers::{copy_tokens, AffineLayerNorm, Linear, PreNormBlock, PreNormBlockSpec, TokenSpan};
use crate::models::params::Params;
use crate::models::sizes::{check_bounds, check_params, check_positive, MAX_DEPTH, MAX_SIDE, MAX_SIZE};
use crate::sampling::recipe::{BackboneSampling, GuidanceForm, SamplerName};
use crate::sampling::NoiseSchedule;
use crate::tensor::{DType, ImageGeometry};

/// nn.LayerNorm's default eps (the official blocks keep it).
const LN_EPS: f32 = 1e-5;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UvitConfig {
    /// Input height = width (pixels, or latent size for the latent models).
    pub img_size: usize,
    pub patch_size: usize,
    pub in_chans: usize,
    pub embed_dim: usize,
    /// The official `depth`: depth/2 in-blocks, one mid-block, depth/2 out-blocks (an odd
    /// depth rounds down, as the official code does).
    pub depth: usize,
    pub num_heads: usize,
    pub mlp_ratio: f64,
    /// Time token = MLP(timestep features) (Linear D->4D, SiLU, Linear 4D->D) instead of the
    /// features themselves.
    pub mlp_time_embed: bool,
    /// Classes without the null class; 0 = unconditional (official num_classes -1).
    pub num_classes: usize,
    /// The label table has one more row, the null class used for guidance (official
    /// num_classes 1001 = 1000 ImageNet classes + null).
    pub null_class: bool,
    /// A 3x3 conv C->C after unpatchify (`final_layer`).
    pub conv: bool,
}

/// Official sizes: (name, embed_dim, depth, heads).
pub const SIZES: &[(&str, usize, usize, usize)] = &[("S", 512, 12, 8), ("M", 768, 16, 12), ("L", 1024, 20, 16), ("H", 1152, 28, 16)];

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
            img_size: p.img_size,
            patch_size: p.patch_size,
            in_chans: p.in_chans,
            embed_dim,
            depth,
            num_heads,
            mlp_ratio: 4.0,
            mlp_time_embed: false,
            num_classes: p.num_classes,
            null_class: p.null_class,
            conv: p.conv,
        })
    }

    pub fn is_conditional(&self) -> bool {
        self.num_classes > 0
    }

    /// Rows of `label_emb`.
    fn label_rows(&self) -> usize {
        self.num_classes + usize::from(self.null_class)
    }

    /// Tokens before the patches: label (if conditional) and time.
    fn extras(&self) -> usize {
        1 + usize::from(self.is_conditional())
    }

    fn patches(&self) -> usize {
        (self.img_size / self.patch_size).pow(2)
    }

    /// Long skips = in-blocks = out-blocks.
    fn skips(&self) -> usize {
        self.depth / 2
    }

    fn block_spec(&self) -> PreNormBlockSpec {
        PreNormBlockSpec {
            dim: self.embed_dim,
            heads: self.num_heads,
            mlp_hidden: (self.embed_dim as f64 * self.mlp_ratio) as usize,
            qkv_bias: false,
            act: Activation::GeluErf,
            eps: LN_EPS,
        }
    }
}

impl Backbone for UvitConfig {
    fn arch(&self) -> &'static str {
        "uvit"
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let positive = [
            ("img_size", self.img_size),
            ("patch_size", self.patch_size),
            ("in_chans", self.in_chans),
            ("embed_dim", self.embed_dim),
            ("num_heads", self.num_heads),
        ];
        check_positive("uvit", &positive)?;
        check_bounds(
            "uvit",
            &[
                ("img_size", self.img_size, MAX_SIDE),
                ("in_chans", self.in_chans, MAX_SIZE),
                ("embed_dim", self.embed_dim, MAX_SIZE),
                ("depth", self.depth, MAX_DEPTH),
                ("num_classes", self.num_classes, MAX_SIZE),
            ],
        )?;
        if !self.img_size.is_multiple_of(self.patch_size) {
            return Err(format!("uvit: img_size {} is not a multiple of patch_size {}", self.img_size, self.patch_size));
        }
        if !self.embed_dim.is_multiple_of(self.num_heads) {
            return Err(format!("uvit: embed_dim {} is not a multiple of num_heads {}", self.embed_dim, self.num_heads));
        }
        if !(self.mlp_ratio > 0.0 && self.mlp_ratio <= 64.0) {
            return Err(format!("uvit: mlp_ratio {} out of range", self.mlp_ratio));
        }
        if self.null_class && !self.is_conditional() {
            return Err("uvit: null_class needs num_classes > 0".into());
        }
        check_params("uvit", &self.param_shapes())?;
        Ok(())
    }

    fn describe(&self) -> String {
        let size = SIZES
            .iter()
            .find(|s| s.1 == self.embed_dim && s.2 == self.depth && s.3 == self.num_heads)
            .map(|s| format!("U-ViT-{}/{}", s.0, self.patch_size))
            .unwrap_or_else(|| format!("U-ViT (custom)/{}", self.patch_size));
        let classes = match (self.num_classes, self.null_class) {
            (0, _) => "unconditional".to_string(),
            (k, true) => format!("{k} classes + null"),
            (k, false) => format!("{k} classes"),
        };
        format!(
            "{size}: depth {} ({} in, mid, {} out), width {}, heads {} (head dim {}), patch {}, input {}x{}x{}, {} tokens + {} extra, {classes}, mlp_time_embed {}, output conv {}",
            self.depth,
            self.skips(),
            self.skips(),
            self.embed_dim,
            self.num_heads,
            self.embed_dim / self.num_heads,
            self.patch_size,
            self.in_chans,
            self.img_size,
            self.img_size,
            self.patches(),
            self.extras(),
            self.mlp_time_embed,
            self.conv
        )
    }

    /// Multiply-adds per image: every linear layer (the decoder only over the patch tokens, as
    /// ditrt computes it), QK^T and AV (2 N^2 D per block), and the output conv.
    fn macs_per_image(&self) -> f64 {
        let (d, c, p) = (self.embed_dim as f64, self.in_chans as f64, self.patch_size as f64);
        let (l, n) = (self.patches() as f64, (self.extras() + self.patches()) as f64);
        let embed = l * c * p * p * d + if self.mlp_time_embed { 8.0 * d * d } else { 0.0 };
        let blocks = (2 * self.skips() + 1) as f64 * self.block_spec().macs(self.extras() + self.patches());
        let skips = self.skips() as f64 * n * 2.0 * d * d;
        let head = l * d * p * p * c + if self.conv { (self.img_size * self.img_size) as f64 * c * c * 9.0 } else { 0.0 };
        embed + blocks + skips + head
    }

    /// The pixel-space ImageNet-64 models have classes but no null class.
    fn io(&self) -> GraphIo {
        let classes = self.is_conditional().then_some(self.num_classes);
        GraphIo {
            input: ModelInput::Image(ImageGeometry { channels: self.in_chans, height: self.img_size, width: self.img_size }),
            output_channels: self.in_chans,
            num_classes: classes,
            null_class: classes.filter(|_| self.null_class).map(|k| k as u32),
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

    /// Official checkpoint keys, in checkpoint (module) order.
    fn load(&self, mut p: Params) -> Result<Box<dyn Forward + '_>> {
        let (d, c, k, spec) = (self.embed_dim, self.in_chans, self.patch_size, self.block_spec());
        let pos = p.tensor("pos_embed", &[1, self.extras() + self.patches(), d])?;
        let patch_embed = Linear::load(p.pp("patch_embed.proj"), &[d, c, k, k], true)?;
        let time_embed = if self.mlp_time_embed {
            Some([Linear::load(p.pp("time_embed.0"), &[4 * d, d], true)?, Linear::load(p.pp("time_embed.2"), &[d, 4 * d], true)?])
        } else {
            None
        };
        let label = if self.is_conditional() { Some(LabelTable::load(p.pp("label_emb"), self.label_rows(), d)?) } else { None };
        let mut bp = p.pp("in_blocks");
        let in_blocks = (0..self.skips()).map(|i| PreNormBlock::load(bp.pp(i), spec)).collect::<Result<_>>()?;
        let mid_block = PreNormBlock::load(p.pp("mid_block"), spec)?;
        let mut bp = p.pp("out_blocks");
        let out_blocks = (0..self.skips())
            .map(|i| {
                let mut b = bp.pp(i);
                Ok((PreNormBlock::load(b.by_ref(), spec)?, Linear::load(b.pp("skip_linear"), &[d, 2 * d], true)?))
            })
            .collect::<Result<_>>()?;
        let norm = AffineLayerNorm::load(p.pp("norm"), d, LN_EPS)?;
        let decoder_pred = Linear::load(p.pp("decoder_pred"), &[k * k * c, d], true)?;
        // Weight [C, C, 3, 3] and bias under the official keys (Linear only binds them).
        let conv = if self.conv { Some(Linear::load(p.pp("final_layer"), &[c, c, 3, 3], true)?) } else { None };
        Ok(Box::new(Uvit { cfg: self, pos, patch_embed, time_embed, label, in_blocks, mid_block, out_blocks, norm, decoder_pred, conv }))
    }
}

/// U-ViT with its parameters bound.
struct Uvit<'a> {
    cfg: &'a UvitConfig,
    pos: View,
    patch_embed: Linear,
    /// The time MLP (D -> 4D, SiLU, 4D -> D), where configured.
    time_embed: Option<[Linear; 2]>,
    label: Option<LabelTable>,
    in_blocks: Vec<PreNormBlock>,
    mid_block: PreNormBlock,
    /// Each out-block with its skip_linear.
    out_blocks: Vec<(PreNormBlock, Linear)>,
    norm: AffineLayerNorm,
    decoder_pred: Linear,
    conv: Option<Linear>,
}

impl Forward for Uvit<'_> {
    fn forward(&self, g: &mut GraphBuilder, batch: usize) {
        let cfg = self.cfg;
        let (d, c, p, s) = (cfg.embed_dim, cfg.in_chans, cfg.patch_size, cfg.img_size);
        let (extras, patches) = (cfg.extras(), cfg.patches());
        let n = extras + patches;
        let rows = batch * n;

        let x = g.input("x", [batch, c, s, s], g.dtype());
        let t = g.input("t", [batch], DType::F32);
        let seq = g.temp([rows, d]);

        // Patch tokens (a conv with kernel = stride = p is a GEMM over patches) after the extras.
        let geom = PatchGeometry { batch, channels: c, height: s, width: s, patch: p };
        let pixels = g.temp([batch, patches, c * p * p]);
        g.push(Op::Patchify(Patchify { geom, x, out: pixels }));
        let tokens = self.patch_embed.apply(g, pixels, batch * patches, Activation::None);
        copy_tokens(g, batch, patches, d, TokenSpan::whole(tokens, patches), TokenSpan { buf: seq, len: n, first: extras });

        // Time token: timestep features of width D (cos first), through the MLP if configured.
        let feats = g.temp([batch, d]);
        g.push(Op::TimestepEmbedding(TimestepEmbedding { batch, dim: d, max_period: 10000.0, t, out: feats }));
        let time = match &self.time_embed {
            Some([t0, t2]) => {
                let hidden = t0.apply(g, feats, batch, Activation::Silu);
                t2.apply(g, hidden, batch, Activation::None)
            }
            None => feats,
        };
        copy_tokens(g, batch, 1, d, TokenSpan::whole(time, 1), TokenSpan { buf: seq, len: n, first: extras - 1 });

        // Label token first.
        if let Some(table) = &self.label {
            let y = g.input("y", [batch], DType::U32);
            let label = table.apply(g, y, batch);
            copy_tokens(g, batch, 1, d, TokenSpan::whole(label, 1), TokenSpan { buf: seq, len: n, first: 0 });
        }
        g.push(Op::Add(Add { a: seq, b: self.pos, out: seq }));

        // In-blocks push their outputs; each out-block first maps cat[x, pop()] back to D.
        let mut skips = Vec::with_capacity(cfg.skips());
        for block in &self.in_blocks {
            block.apply(g, seq, batch, n);
            let saved = g.temp([rows, d]);
            copy_tokens(g, batch, n, d, TokenSpan::whole(seq, n), TokenSpan::whole(saved, n));
            skips.push(saved);
        }
        self.mid_block.apply(g, seq, batch, n);
        let mut seq = seq;
        for (block, joined) in &self.out_blocks {
            let skip = skips.pop().expect("one skip per in-block");
            let out = g.temp([rows, d]);
            g.push(Op::SkipConcatLinear(SkipConcatLinear { rows, dim_x: d, dim_skip: d, n: d, x: seq, skip, w: joined.w, bias: joined.b, out }));
            seq = out;
            block.apply(g, seq, batch, n);
        }

        // Head: dropping the extra tokens first is exact (LN and the linear act per token).
        let kept = g.temp([batch * patches, d]);
        copy_tokens(g, batch, patches, d, TokenSpan { buf: seq, len: n, first: extras }, TokenSpan::whole(kept, patches));
        let normed = self.norm.apply(g, kept, batch * patches);
        let pred = self.decoder_pred.apply(g, normed, batch * patches, Activation::None);
        let out = g.output("out", [batch, c, s, s]);
        let image = if self.conv.is_some() { g.temp([batch, c, s, s]) } else { out };
        g.push(Op::Unpatchify(Unpatchify { geom, x: pred, out: image }));
        if let Some(conv) = &self.conv {
            g.push(Op::Conv2d(Conv2d {
                batch,
                in_c: c,
                out_c: c,
                height: s,
                width: s,
                kernel: 3,
                pad: 1,
                x: image,
                weight: conv.w,
                bias: conv.b,
                out,
            }));
        }
    }
}
