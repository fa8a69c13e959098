//! U-ViT (Bao et al., arXiv 2209.12152) as the released checkpoints compute it
//! (baofff/U-ViT libs/uvit.py): every input is a token, [label (if conditional), time,
//! patches] plus a learned position table; depth/2 in-blocks, a mid-block and depth/2
//! out-blocks joined by long skips taken last-in-first-out; LN -> decoder_pred -> drop the
//! extra tokens -> unpatchify -> optional 3x3 conv.
use serde::{Deserialize, Serialize};

use crate::backend::{Activation, Add, Conv2d, Op, PatchGeometry, Patchify, SkipConcatLinear, TimestepEmbedding, Unpatchify};
use crate::error::{Error, Result};
use crate::graph::{Graph, GraphBuilder};
use crate::models::embedders::label_embedding;
use crate::models::layers::{copy_tokens, AffineLayerNorm, Linear, PreNormBlock, PreNormBlockSpec, TokenSpan};
use crate::models::sizes::{check_bounds, check_params, check_positive, MAX_DEPTH, MAX_SIDE, MAX_SIZE};
use crate::models::weight_source::WeightSource;
use crate::tensor::DType;

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

    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
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

    pub fn describe(&self) -> String {
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

    /// Official checkpoint keys and shapes, in checkpoint (module) order.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, c, p) = (self.embed_dim, self.in_chans, self.patch_size);
        let spec = self.block_spec();
        let mut v: Vec<(String, Vec<usize>)> = vec![
            ("pos_embed".into(), vec![1, self.extras() + self.patches(), d]),
            ("patch_embed.proj.weight".into(), vec![d, c, p, p]),
            ("patch_embed.proj.bias".into(), vec![d]),
        ];
        if self.mlp_time_embed {
            v.extend([
                ("time_embed.0.weight".into(), vec![4 * d, d]),
                ("time_embed.0.bias".into(), vec![4 * d]),
                ("time_embed.2.weight".into(), vec![d, 4 * d]),
                ("time_embed.2.bias".into(), vec![d]),
            ]);
        }
        if self.is_conditional() {
            v.push(("label_emb.weight".into(), vec![self.label_rows(), d]));
        }
        for i in 0..self.skips() {
            v.extend(spec.param_shapes(&format!("in_blocks.{i}")));
        }
        v.extend(spec.param_shapes("mid_block"));
        for i in 0..self.skips() {
            let b = format!("out_blocks.{i}");
            v.extend(spec.param_shapes(&b));
            v.extend([(format!("{b}.skip_linear.weight"), vec![d, 2 * d]), (format!("{b}.skip_linear.bias"), vec![d])]);
        }
        v.extend([
            ("norm.weight".into(), vec![d]),
            ("norm.bias".into(), vec![d]),
            ("decoder_pred.weight".into(), vec![p * p * c, d]),
            ("decoder_pred.bias".into(), vec![p * p * c]),
        ]);
        if self.conv {
            v.extend([("final_layer.weight".into(), vec![c, c, 3, 3]), ("final_layer.bias".into(), vec![c])]);
        }
        v
    }

    /// Multiply-adds per image: every linear layer (the decoder only over the patch tokens, as
    /// ditrt computes it), QK^T and AV (2 N^2 D per block), and the output conv.
    pub fn macs_per_image(&self) -> f64 {
        let (d, c, p) = (self.embed_dim as f64, self.in_chans as f64, self.patch_size as f64);
        let (l, n) = (self.patches() as f64, (self.extras() + self.patches()) as f64);
        let embed = l * c * p * p * d + if self.mlp_time_embed { 8.0 * d * d } else { 0.0 };
        let blocks = (2 * self.skips() + 1) as f64 * self.block_spec().macs(self.extras() + self.patches());
        let skips = self.skips() as f64 * n * 2.0 * d * d;
        let head = l * d * p * p * c + if self.conv { (self.img_size * self.img_size) as f64 * c * c * 9.0 } else { 0.0 };
        embed + blocks + skips + head
    }
}

pub fn build(cfg: &UvitConfig, w: &mut dyn WeightSource, batch: usize, dtype: DType) -> Result<Graph> {
    cfg.validate().map_err(Error::invalid)?;
    let (d, c, p, s) = (cfg.embed_dim, cfg.in_chans, cfg.patch_size, cfg.img_size);
    let (extras, patches) = (cfg.extras(), cfg.patches());
    let n = extras + patches;
    let rows = batch * n;
    let mut g = GraphBuilder::new(dtype);

    let x = g.input("x", [batch, c, s, s], dtype);
    let t = g.input("t", [batch], DType::F32);
    let seq = g.temp([rows, d]);

    // Patch tokens (a conv with kernel = stride = p is a GEMM over patches) after the extras.
    let geom = PatchGeometry { batch, channels: c, height: s, width: s, patch: p };
    let pixels = g.temp([batch, patches, c * p * p]);
    g.push(Op::Patchify(Patchify { geom, x, out: pixels }));
    let embed = Linear::load(&mut g, w, "patch_embed.proj", &[d, c, p, p], true)?;
    let tokens = embed.apply(&mut g, pixels, batch * patches, Activation::None);
    copy_tokens(&mut g, batch, patches, d, TokenSpan::whole(tokens, patches), TokenSpan { buf: seq, len: n, first: extras });

    // Time token: timestep features of width D (cos first), through the MLP if configured.
    let feats = g.temp([batch, d]);
    g.push(Op::TimestepEmbedding(TimestepEmbedding { batch, dim: d, max_period: 10000.0, t, out: feats }));
    let time = if cfg.mlp_time_embed {
        let t0 = Linear::load(&mut g, w, "time_embed.0", &[4 * d, d], true)?;
        let t2 = Linear::load(&mut g, w, "time_embed.2", &[d, 4 * d], true)?;
        let hidden = t0.apply(&mut g, feats, batch, Activation::Silu);
        t2.apply(&mut g, hidden, batch, Activation::None)
    } else {
        feats
    };
    copy_tokens(&mut g, batch, 1, d, TokenSpan::whole(time, 1), TokenSpan { buf: seq, len: n, first: extras - 1 });

    // Label token first.
    if cfg.is_conditional() {
        let y = g.input("y", [batch], DType::U32);
        let label = label_embedding(&mut g, w, "label_emb.weight", y, batch, cfg.label_rows(), d)?;
        copy_tokens(&mut g, batch, 1, d, TokenSpan::whole(label, 1), TokenSpan { buf: seq, len: n, first: 0 });
    }

    let pos = w.fetch("pos_embed", &[1, n, d])?;
    let pos = g.weight("pos_embed", pos);
    g.push(Op::Add(Add { a: seq, b: pos, out: seq }));

    // In-blocks push their outputs; each out-block first maps cat[x, pop()] back to D.
    let spec = cfg.block_spec();
    let mut skips = Vec::with_capacity(cfg.skips());
    for i in 0..cfg.skips() {
        PreNormBlock::load(&mut g, w, &format!("in_blocks.{i}"), spec)?.apply(&mut g, seq, batch, n);
        let saved = g.temp([rows, d]);
        copy_tokens(&mut g, batch, n, d, TokenSpan::whole(seq, n), TokenSpan::whole(saved, n));
        skips.push(saved);
    }
    PreNormBlock::load(&mut g, w, "mid_block", spec)?.apply(&mut g, seq, batch, n);
    let mut seq = seq;
    for i in 0..cfg.skips() {
        let b = format!("out_blocks.{i}");
        let skip = skips.pop().expect("one skip per in-block");
        let joined = Linear::load(&mut g, w, &format!("{b}.skip_linear"), &[d, 2 * d], true)?;
        let out = g.temp([rows, d]);
        g.push(Op::SkipConcatLinear(SkipConcatLinear { rows, dim_x: d, dim_skip: d, n: d, x: seq, skip, w: joined.w, bias: joined.b, out }));
        seq = out;
        PreNormBlock::load(&mut g, w, &b, spec)?.apply(&mut g, seq, batch, n);
    }

    // Head: dropping the extra tokens first is exact (LN and the linear act per token).
    let kept = g.temp([batch * patches, d]);
    copy_tokens(&mut g, batch, patches, d, TokenSpan { buf: seq, len: n, first: extras }, TokenSpan::whole(kept, patches));
    let normed = AffineLayerNorm::load(&mut g, w, "norm", d, LN_EPS)?.apply(&mut g, kept, batch * patches);
    let decoder = Linear::load(&mut g, w, "decoder_pred", &[p * p * c, d], true)?;
    let pred = decoder.apply(&mut g, normed, batch * patches, Activation::None);
    let out = g.output("out", [batch, c, s, s]);
    let image = if cfg.conv { g.temp([batch, c, s, s]) } else { out };
    g.push(Op::Unpatchify(Unpatchify { geom, x: pred, out: image }));
    if cfg.conv {
        // Weight [C, C, 3, 3] and bias under the official keys (Linear only binds them).
        let conv = Linear::load(&mut g, w, "final_layer", &[c, c, 3, 3], true)?;
        g.push(Op::Conv2d(Conv2d { batch, in_c: c, out_c: c, height: s, width: s, kernel: 3, pad: 1, x: image, weight: conv.w, bias: conv.b, out }));
    }
    g.finish()
}
