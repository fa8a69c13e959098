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
use crate::graph::{Graph, GraphBuilder};
use crate::models::conv_layers::{channels_first, channels_last, conv_shapes, norm_shapes, Conv, GroupNormLayer};
use crate::models::layers::{concat_rows, packed_attention, Linear};
use crate::models::sizes::{check_bounds, check_params, check_positive, MAX_DEPTH, MAX_SIDE, MAX_SIZE};
use crate::models::weight_source::WeightSource;
use crate::tensor::DType;

/// Every GroupNorm of the decoder (diffusers resnet_eps, CompVis Normalize).
const GN_EPS: f32 = 1e-6;
const MID_ATTN: &str = "decoder.mid_block.attentions.0";

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

    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
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

    pub fn describe(&self) -> String {
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

    fn resnet_shapes(prefix: &str, cin: usize, cout: usize) -> Vec<(String, Vec<usize>)> {
        let mut v: Vec<(String, Vec<usize>)> = norm_shapes(&format!("{prefix}.norm1"), cin).into();
        v.extend(conv_shapes(&format!("{prefix}.conv1"), cout, cin, 3));
        v.extend(norm_shapes(&format!("{prefix}.norm2"), cout));
        v.extend(conv_shapes(&format!("{prefix}.conv2"), cout, cout, 3));
        if cin != cout {
            v.extend(conv_shapes(&format!("{prefix}.conv_shortcut"), cout, cin, 1));
        }
        v
    }

    /// diffusers keys and shapes in diffusers' module order: Decoder (conv_in, up_blocks,
    /// mid_block, conv_norm_out, conv_out), then AutoencoderKL's post_quant_conv.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (stages, z) = (self.stages(), self.latent_channels);
        let mut v: Vec<(String, Vec<usize>)> = conv_shapes("decoder.conv_in", stages[0], z, 3).into();
        let mut cin = stages[0];
        for (i, &cout) in stages.iter().enumerate() {
            for j in 0..=self.layers_per_block {
                v.extend(Self::resnet_shapes(&format!("decoder.up_blocks.{i}.resnets.{j}"), cin, cout));
                cin = cout;
            }
            if i + 1 < stages.len() {
                v.extend(conv_shapes(&format!("decoder.up_blocks.{i}.upsamplers.0.conv"), cout, cout, 3));
            }
        }
        let c = stages[0];
        v.extend(norm_shapes(&format!("{MID_ATTN}.group_norm"), c));
        for name in ["to_q", "to_k", "to_v", "to_out.0"] {
            v.extend([(format!("{MID_ATTN}.{name}.weight"), vec![c, c]), (format!("{MID_ATTN}.{name}.bias"), vec![c])]);
        }
        for j in 0..2 {
            v.extend(Self::resnet_shapes(&format!("decoder.mid_block.resnets.{j}"), c, c));
        }
        let top = *stages.last().expect("validated: at least one stage");
        v.extend(norm_shapes("decoder.conv_norm_out", top));
        v.extend(conv_shapes("decoder.conv_out", self.out_channels, top, 3));
        v.extend(conv_shapes("post_quant_conv", z, z, 1));
        v
    }

    /// Multiply-adds to decode one latent: every conv, the attention's four projections and its
    /// QK^T and AV over all latent pixels.
    pub fn macs_per_image(&self) -> f64 {
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
    fn load(g: &mut GraphBuilder, w: &mut dyn WeightSource, prefix: &str, cin: usize, cout: usize, groups: usize) -> Result<ResnetBlock> {
        Ok(ResnetBlock {
            norm1: GroupNormLayer::load(g, w, &format!("{prefix}.norm1"), cin, groups, GN_EPS)?,
            conv1: Conv::load(g, w, &format!("{prefix}.conv1"), cout, cin, 3)?,
            norm2: GroupNormLayer::load(g, w, &format!("{prefix}.norm2"), cout, groups, GN_EPS)?,
            conv2: Conv::load(g, w, &format!("{prefix}.conv2"), cout, cout, 3)?,
            shortcut: if cin != cout { Some(Conv::load(g, w, &format!("{prefix}.conv_shortcut"), cout, cin, 1)?) } else { None },
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

/// The mid block's attention in place on x [batch, C, side, side]: x += to_out(softmax(q k^T /
/// sqrt(C)) v), one head, q/k/v linear maps of GroupNorm(x) per pixel.
fn mid_attention(g: &mut GraphBuilder, w: &mut dyn WeightSource, x: View, cfg: &VaeConfig, batch: usize) -> Result<()> {
    let (c, spatial) = (cfg.stages()[0], cfg.latent_size * cfg.latent_size);
    let rows = batch * spatial;
    let norm = GroupNormLayer::load(g, w, &format!("{MID_ATTN}.group_norm"), c, cfg.norm_num_groups, GN_EPS)?;
    // to_q, to_k, to_v as one [3C, C] projection laid out [q | k | v].
    let (mut weights, mut biases) = (Vec::new(), Vec::new());
    for name in ["to_q", "to_k", "to_v"] {
        weights.push(w.fetch(&format!("{MID_ATTN}.{name}.weight"), &[c, c])?);
        biases.push(w.fetch(&format!("{MID_ATTN}.{name}.bias"), &[c])?);
    }
    let qkv = Linear {
        w: g.weight(&format!("{MID_ATTN}.to_q|to_k|to_v.weight"), concat_rows(&weights)),
        b: Some(g.weight(&format!("{MID_ATTN}.to_q|to_k|to_v.bias"), concat_rows(&biases))),
        n: 3 * c,
        k: c,
    };
    let out_proj = Linear::load(g, w, &format!("{MID_ATTN}.to_out.0"), &[c, c], true)?;

    let normed = norm.apply(g, x, batch, spatial, false);
    let tokens = channels_last(g, normed, batch, c, spatial);
    let packed = qkv.apply(g, tokens, rows, Activation::None);
    let attn = packed_attention(g, packed, batch, spatial, c, 1, None);
    let projected = out_proj.apply(g, attn, rows, Activation::None);
    let back = channels_first(g, projected, batch, c, spatial);
    g.push(Op::Add(Add { a: x, b: back, out: x }));
    Ok(())
}

/// Inputs: `x` the latent [B, latent_channels, h, w]; output `out` [B, out_channels, H, W].
pub fn build(cfg: &VaeConfig, w: &mut dyn WeightSource, batch: usize, dtype: DType) -> Result<Graph> {
    cfg.validate().map_err(Error::invalid)?;
    let (stages, z, s) = (cfg.stages(), cfg.latent_channels, cfg.latent_size);
    let groups = cfg.norm_num_groups;
    let mut g = GraphBuilder::new(dtype);

    let x = g.input("x", [batch, z, s, s], dtype);
    let latent = Conv::load(&mut g, w, "post_quant_conv", z, z, 1)?.apply(&mut g, x, batch, s, s);
    let c = stages[0];
    let mut h = Conv::load(&mut g, w, "decoder.conv_in", c, z, 3)?.apply(&mut g, latent, batch, s, s);
    h = ResnetBlock::load(&mut g, w, "decoder.mid_block.resnets.0", c, c, groups)?.apply(&mut g, h, batch, s);
    mid_attention(&mut g, w, h, cfg, batch)?;
    h = ResnetBlock::load(&mut g, w, "decoder.mid_block.resnets.1", c, c, groups)?.apply(&mut g, h, batch, s);

    let (mut side, mut cin) = (s, c);
    for (i, &cout) in stages.iter().enumerate() {
        for j in 0..=cfg.layers_per_block {
            h = ResnetBlock::load(&mut g, w, &format!("decoder.up_blocks.{i}.resnets.{j}"), cin, cout, groups)?.apply(&mut g, h, batch, side);
            cin = cout;
        }
        if i + 1 < stages.len() {
            let wide = g.temp([batch, cout, 2 * side, 2 * side]);
            g.push(Op::Upsample2x(Upsample2x { batch, channels: cout, height: side, width: side, x: h, out: wide }));
            side *= 2;
            h = Conv::load(&mut g, w, &format!("decoder.up_blocks.{i}.upsamplers.0.conv"), cout, cout, 3)?.apply(&mut g, wide, batch, side, side);
        }
    }

    let act = GroupNormLayer::load(&mut g, w, "decoder.conv_norm_out", cin, groups, GN_EPS)?.apply(&mut g, h, batch, side * side, true);
    let out = g.output("out", [batch, cfg.out_channels, side, side]);
    Conv::load(&mut g, w, "decoder.conv_out", cfg.out_channels, cin, 3)?.apply_into(&mut g, act, batch, side, side, out);
    g.finish()
}
