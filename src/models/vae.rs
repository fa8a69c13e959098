//! Stable Diffusion's KL-f8 VAE decoder (plus post_quant_conv) as diffusers' AutoencoderKL.decode
//! computes it (models/autoencoders/vae.py Decoder; the same math as CompVis
//! ldm/modules/diffusionmodules/model.py Decoder): z -> post_quant_conv 1x1 -> conv_in 3x3 -> mid
//! (ResBlock, single-head attention over all pixels, ResBlock) -> up stages, widest first, each
//! layers_per_block + 1 ResBlocks and, but for the last, nearest x2 + 3x3 conv -> GN -> SiLU ->
//! conv_out 3x3. No latent scaling (samplers divide by 0.18215 first). Keys: diffusers' layout
//! (weights-tools/archs/vae/checkpoint.py maps the CompVis one onto it).
use serde::{Deserialize, Serialize};

use crate::backend::{Activation, Add, Op, Upsample2x, View};
use crate::error::{Error, Result};
use crate::graph::GraphBuilder;
use crate::models::backbone::{Backbone, Forward, GraphIo, ModelInput};
use crate::models::conv_layers::{channels_first, channels_last, Conv, GroupNormLayer};
use crate::models::layers::{packed_attention, Linear};
use crate::models::params::Params;
use crate::models::sizes::{check_bounds, check_params, check_positive, MAX_DEPTH, MAX_SIDE, MAX_SIZE};
use crate::sampling::recipe::BackboneSampling;
use crate::tensor::ImageGeometry;

/// Every GroupNorm of the decoder (diffusers resnet_eps, CompVis Normalize).
const GN_EPS: f32 = 1e-6;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    pub latent_channels: usize,
    /// Image channels.
    pub out_channels: usize,
    /// Channels per level, narrowest first (diffusers' name; CompVis ch * ch_mult).
    pub block_out_channels: Vec<usize>,
    /// Each up stage holds layers_per_block + 1 ResBlocks.
    pub layers_per_block: usize,
    pub norm_num_groups: usize,
    /// Latent height = width the graph is built for (32: 256 px).
    pub latent_size: usize,
}

impl VaeConfig {
    /// "SD-VAE-KL-f8" (latent 32, 256 px) or "SD-VAE-KL-f8-512" (latent 64): SD's first stage
    /// (ch 128, ch_mult 1,2,4,4, 2 res blocks, z 4), e.g. stabilityai/sd-vae-ft-ema / -mse.
    pub fn preset_names() -> String {
        "SD-VAE-KL-f8, SD-VAE-KL-f8-512".into()
    }

    pub fn preset(name: &str) -> Option<VaeConfig> {
        let latent_size = match name {
            "SD-VAE-KL-f8" => 32,
            "SD-VAE-KL-f8-512" => 64,
            _ => return None,
        };
        Some(VaeConfig {
            latent_channels: 4,
            out_channels: 3,
            block_out_channels: vec![128, 256, 512, 512],
            layers_per_block: 2,
            norm_num_groups: 32,
            latent_size,
        })
    }

    /// Channels of the up stages, widest (first run) first.
    fn stages(&self) -> Vec<usize> {
        self.block_out_channels.iter().rev().copied().collect()
    }

    /// Output side: each stage but the last doubles it.
    pub fn image_size(&self) -> usize {
        self.latent_size << (self.block_out_channels.len() - 1)
    }
}

impl Backbone for VaeConfig {
    fn arch(&self) -> &'static str {
        "vae"
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let positive = [
            ("latent_channels", self.latent_channels),
            ("out_channels", self.out_channels),
            ("norm_num_groups", self.norm_num_groups),
            ("latent_size", self.latent_size),
        ];
        check_positive("vae", &positive)?;
        check_bounds(
            "vae",
            &[
                ("latent_channels", self.latent_channels, MAX_SIZE),
                ("out_channels", self.out_channels, MAX_SIZE),
                ("layers_per_block", self.layers_per_block, MAX_DEPTH),
                ("latent_size", self.latent_size, MAX_SIDE),
            ],
        )?;
        let levels = self.block_out_channels.len();
        if levels == 0 || levels > 8 {
            return Err(format!("vae: {levels} levels (block_out_channels has 1 to 8 entries)"));
        }
        for &c in &self.block_out_channels {
            check_bounds("vae", &[("block_out_channels", c, MAX_SIZE)])?;
        }
        if let Some(c) = self.block_out_channels.iter().find(|c| **c == 0 || !c.is_multiple_of(self.norm_num_groups)) {
            return Err(format!("vae: channels {c} is not a positive multiple of norm_num_groups {}", self.norm_num_groups));
        }
        if self.image_size() > 16384 {
            return Err(format!("vae: config too large (output {} px, at most 16384)", self.image_size()));
        }
        check_params("vae", &self.param_shapes())?;
        Ok(())
    }

    fn describe(&self) -> String {
        let name = if self.stages() == [512, 512, 256, 128] && self.layers_per_block == 2 && self.latent_channels == 4 {
            "SD KL-f8 VAE decoder"
        } else {
            "KL VAE decoder (custom)"
        };
        let chans: Vec<String> = self.stages().iter().map(|c| c.to_string()).collect();
        format!(
            "{name}: latent {}x{}x{} -> image {}x{}x{}, up stages {} (widest first) with {} ResBlocks each, single-head mid attention over {} pixels, GroupNorm {}",
            self.latent_channels,
            self.latent_size,
            self.latent_size,
            self.out_channels,
            self.image_size(),
            self.image_size(),
            chans.join("/"),
            self.layers_per_block + 1,
            self.latent_size * self.latent_size,
            self.norm_num_groups
        )
    }

    /// Multiply-adds to decode one latent: every conv, the attention's four projections and its
    /// QK^T and AV over all latent pixels.
    fn macs_per_image(&self) -> f64 {
        let conv = |side: usize, cin: usize, cout: usize, k: usize| (side * side * cin * cout * k * k) as f64;
        let (stages, z, s) = (self.stages(), self.latent_channels, self.latent_size);
        let resnet = |side: usize, cin: usize, cout: usize| {
            conv(side, cin, cout, 3) + conv(side, cout, cout, 3) + if cin != cout { conv(side, cin, cout, 1) } else { 0.0 }
        };
        let (c, pixels) = (stages[0], (s * s) as f64);
        let mut macs = conv(s, z, z, 1) + conv(s, z, c, 3) + 2.0 * resnet(s, c, c);
        macs += pixels * 4.0 * (c * c) as f64 + 2.0 * pixels * pixels * c as f64;
        let (mut side, mut cin) = (s, c);
        for (i, &cout) in stages.iter().enumerate() {
            for _ in 0..=self.layers_per_block {
                macs += resnet(side, cin, cout);
                cin = cout;
            }
            if i + 1 < stages.len() {
                side *= 2;
                macs += conv(side, cout, cout, 3);
            }
        }
        macs + conv(side, cin, self.out_channels, 3)
    }

    /// The latent in, the image out; no classes.
    fn io(&self) -> GraphIo {
        GraphIo {
            input: ModelInput::Image(ImageGeometry { channels: self.latent_channels, height: self.latent_size, width: self.latent_size }),
            output_channels: self.out_channels,
            num_classes: None,
            null_class: None,
            context: None,
        }
    }

    fn sampling(&self) -> Result<BackboneSampling> {
        Err(Error::invalid("a VAE decoder is not a denoiser: it cannot be sampled"))
    }

    /// diffusers keys in diffusers' module order: Decoder (conv_in, up_blocks, mid_block,
    /// conv_norm_out, conv_out), then AutoencoderKL's post_quant_conv.
    fn load(&self, mut p: Params) -> Result<Box<dyn Forward + '_>> {
        let (stages, z, groups) = (self.stages(), self.latent_channels, self.norm_num_groups);
        let mut dec = p.pp("decoder");
        let conv_in = Conv::load(dec.pp("conv_in"), stages[0], z, 3)?;
        let mut up = Vec::with_capacity(stages.len());
        let mut cin = stages[0];
        let mut up_blocks = dec.pp("up_blocks");
        for (i, &cout) in stages.iter().enumerate() {
            let mut stage = up_blocks.pp(i);
            let mut resnets = Vec::with_capacity(self.layers_per_block + 1);
            for j in 0..=self.layers_per_block {
                resnets.push(ResnetBlock::load(stage.pp("resnets").pp(j), cin, cout, groups)?);
                cin = cout;
            }
            let upsample = if i + 1 < stages.len() { Some(Conv::load(stage.pp("upsamplers.0.conv"), cout, cout, 3)?) } else { None };
            up.push(UpStage { resnets, upsample, channels: cout });
        }
        let c = stages[0];
        let mut mid = dec.pp("mid_block");
        let attention = MidAttention::load(mid.pp("attentions.0"), c, groups)?;
        let mid_resnets = [ResnetBlock::load(mid.pp("resnets.0"), c, c, groups)?, ResnetBlock::load(mid.pp("resnets.1"), c, c, groups)?];
        let norm_out = GroupNormLayer::load(dec.pp("conv_norm_out"), cin, groups, GN_EPS)?;
        let conv_out = Conv::load(dec.pp("conv_out"), self.out_channels, cin, 3)?;
        let post_quant_conv = Conv::load(p.pp("post_quant_conv"), z, z, 1)?;
        Ok(Box::new(Vae { cfg: self, post_quant_conv, conv_in, mid_resnets, attention, up, norm_out, conv_out }))
    }
}

/// A ResBlock (diffusers ResnetBlock2D without time embedding) bound to its weights.
struct ResnetBlock {
    norm1: GroupNormLayer,
    conv1: Conv,
    norm2: GroupNormLayer,
    conv2: Conv,
    shortcut: Option<Conv>,
}

impl ResnetBlock {
    fn load(mut p: Params, cin: usize, cout: usize, groups: usize) -> Result<ResnetBlock> {
        Ok(ResnetBlock {
            norm1: GroupNormLayer::load(p.pp("norm1"), cin, groups, GN_EPS)?,
            conv1: Conv::load(p.pp("conv1"), cout, cin, 3)?,
            norm2: GroupNormLayer::load(p.pp("norm2"), cout, groups, GN_EPS)?,
            conv2: Conv::load(p.pp("conv2"), cout, cout, 3)?,
            shortcut: if cin != cout { Some(Conv::load(p.pp("conv_shortcut"), cout, cin, 1)?) } else { None },
        })
    }

    /// shortcut(x) + conv2(SiLU(GN(conv1(SiLU(GN(x)))))) as a new [batch, cout, side, side].
    fn apply(&self, g: &mut GraphBuilder, x: View, batch: usize, side: usize) -> View {
        let spatial = side * side;
        let a = self.norm1.apply(g, x, batch, spatial, true);
        let h = self.conv1.apply(g, a, batch, side, side);
        let a = self.norm2.apply(g, h, batch, spatial, true);
        let out = self.conv2.apply(g, a, batch, side, side);
        let skip = match &self.shortcut {
            Some(conv) => conv.apply(g, x, batch, side, side),
            None => x,
        };
        g.push(Op::Add(Add { a: out, b: skip, out }));
        out
    }
}

/// The mid block's attention: x += to_out(softmax(q k^T / sqrt(C)) v), one head, q/k/v linear
/// maps of GroupNorm(x) per pixel.
struct MidAttention {
    norm: GroupNormLayer,
    /// to_q, to_k, to_v as one [3C, C] projection laid out [q | k | v].
    qkv: Linear,
    out_proj: Linear,
    channels: usize,
}

impl MidAttention {
    fn load(mut p: Params, c: usize, groups: usize) -> Result<MidAttention> {
        let norm = GroupNormLayer::load(p.pp("group_norm"), c, groups, GN_EPS)?;
        let qkv = Linear::load_packed_qkv(&mut p, ["to_q", "to_k", "to_v"], c)?;
        let out_proj = Linear::load(p.pp("to_out.0"), &[c, c], true)?;
        Ok(MidAttention { norm, qkv, out_proj, channels: c })
    }

    /// In place on x [batch, C, side, side] (`spatial` pixels).
    fn apply(&self, g: &mut GraphBuilder, x: View, batch: usize, spatial: usize) {
        let (c, rows) = (self.channels, batch * spatial);
        let normed = self.norm.apply(g, x, batch, spatial, false);
        let tokens = channels_last(g, normed, batch, c, spatial);
        let packed = self.qkv.apply(g, tokens, rows, Activation::None);
        let attn = packed_attention(g, packed, batch, spatial, c, 1, None);
        let projected = self.out_proj.apply(g, attn, rows, Activation::None);
        let back = channels_first(g, projected, batch, c, spatial);
        g.push(Op::Add(Add { a: x, b: back, out: x }));
    }
}

/// An up stage: ResBlocks to `channels` and, but for the last stage, nearest x2 + 3x3 conv.
struct UpStage {
    resnets: Vec<ResnetBlock>,
    upsample: Option<Conv>,
    channels: usize,
}

struct Vae<'a> {
    cfg: &'a VaeConfig,
    post_quant_conv: Conv,
    conv_in: Conv,
    mid_resnets: [ResnetBlock; 2],
    attention: MidAttention,
    up: Vec<UpStage>,
    norm_out: GroupNormLayer,
    conv_out: Conv,
}

impl Forward for Vae<'_> {
    fn forward(&self, g: &mut GraphBuilder, batch: usize) {
        let (cfg, s) = (self.cfg, self.cfg.latent_size);
        let x = g.input("x", [batch, cfg.latent_channels, s, s], g.dtype());
        let latent = self.post_quant_conv.apply(g, x, batch, s, s);
        let mut h = self.conv_in.apply(g, latent, batch, s, s);
        h = self.mid_resnets[0].apply(g, h, batch, s);
        self.attention.apply(g, h, batch, s * s);
        h = self.mid_resnets[1].apply(g, h, batch, s);

        let mut side = s;
        for stage in &self.up {
            for resnet in &stage.resnets {
                h = resnet.apply(g, h, batch, side);
            }
            if let Some(conv) = &stage.upsample {
                let channels = stage.channels;
                let wide = g.temp([batch, channels, 2 * side, 2 * side]);
                g.push(Op::Upsample2x(Upsample2x { batch, channels, height: side, width: side, x: h, out: wide }));
                side *= 2;
                h = conv.apply(g, wide, batch, side, side);
            }
        }

        let act = self.norm_out.apply(g, h, batch, side * side, true);
        let out = g.output("out", [batch, cfg.out_channels, side, side]);
        self.conv_out.apply_into(g, act, batch, side, side, out);
    }
}
