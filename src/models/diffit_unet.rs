//! Image-space (U-shaped) DiffiT, arXiv 2312.02139 Sec. 3.2.1. No code was released: the layout
//! is ours (README.md, "Image-space DiffiT: our choices"; the PyTorch twin is
//! weights-tools/archs/diffit_unet/reference.py). Levels l = 0..L-1 at image_size / 2^l with channels[l],
//! each with `blocks_per_level` DiffiT ResBlocks (Eq. 9-10: x += DiffiT-Block(Conv3x3(SiLU(GN(x))), c))
//! whose TMSA attends within windows of min(window_size, side)^2 pixels. Encoder: ResBlocks, then a
//! 3x3 stride-2 conv; decoder (bottom up): nearest x2 + 3x3 conv, plus the encoder's output at
//! that level, then ResBlocks; head GN -> SiLU -> 3x3 conv.
use serde::{Deserialize, Serialize};

use crate::backend::{Add, Op, Upsample2x, View};
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::backbone::{denoiser_sampling, Backbone, Forward, GraphIo, ModelInput};
use crate::models::conv_layers::{Conv, GroupNormLayer};
use crate::models::diffit_block::{DiffitBlock, DiffitBlockSpec};
use crate::models::embedders::{LabelTable, TimestepMlp, FREQ_DIM};
use crate::models::params::Params;
use crate::models::sizes::{check_bounds, check_params, check_positive, MAX_DEPTH, MAX_SIDE, MAX_SIZE};
use crate::models::windows::{from_windows, to_windows, WindowGrid};
use crate::sampling::recipe::{BackboneSampling, GuidanceForm, SamplerName};
use crate::sampling::NoiseSchedule;
use crate::tensor::{DType, ImageGeometry};

const GN_EPS: f32 = 1e-6;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffitUnetConfig {
    /// Image height = width.
    pub image_size: usize,
    pub in_channels: usize,
    /// Channels of each level, finest first.
    pub channels: Vec<usize>,
    /// DiffiT ResBlocks per level, in the encoder and again in the decoder.
    pub blocks_per_level: usize,
    pub num_heads: usize,
    /// Attention window side (a level smaller than the window attends globally).
    pub window_size: usize,
    pub mlp_ratio: f64,
    /// Width of the time (+ class) embedding c.
    pub time_dim: usize,
    /// GroupNorm groups.
    pub groups: usize,
    /// Classes without the null class; 0 = unconditional (no label table, no `y` input).
    pub num_classes: usize,
    /// Output 2C channels [eps | v].
    pub learn_sigma: bool,
}

impl DiffitUnetConfig {
    /// "DiffiT-CIFAR10": 32x32x3, unconditional (our sizes, see the README).
    pub fn preset_names() -> String {
        "DiffiT-CIFAR10".into()
    }

    pub fn preset(name: &str) -> Option<DiffitUnetConfig> {
        (name == "DiffiT-CIFAR10").then(|| DiffitUnetConfig {
            image_size: 32,
            in_channels: 3,
            channels: vec![128, 256, 256, 256],
            blocks_per_level: 2,
            num_heads: 4,
            window_size: 8,
            mlp_ratio: 4.0,
            time_dim: 512,
            groups: 32,
            num_classes: 0,
            learn_sigma: false,
        })
    }

    pub fn out_channels(&self) -> usize {
        if self.learn_sigma {
            2 * self.in_channels
        } else {
            self.in_channels
        }
    }

    fn side(&self, level: usize) -> usize {
        self.image_size >> level
    }

    fn block_spec(&self, level: usize) -> DiffitBlockSpec {
        let dim = self.channels[level];
        DiffitBlockSpec {
            dim,
            heads: self.num_heads,
            mlp_hidden: (dim as f64 * self.mlp_ratio) as usize,
            temb_dim: self.time_dim,
            window: self.window_size.min(self.side(level)),
        }
    }

    /// `resblocks.{j}` of one level of the encoder or decoder.
    fn resblocks(&self, p: &mut Params, level: usize) -> Result<Vec<ResBlock>> {
        let mut rp = p.pp("resblocks");
        (0..self.blocks_per_level).map(|j| ResBlock::load(rp.pp(j), self, level)).collect()
    }
}

impl Backbone for DiffitUnetConfig {
    fn arch(&self) -> &'static str {
        "diffit_unet"
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let positive = [
            ("image_size", self.image_size),
            ("in_channels", self.in_channels),
            ("blocks_per_level", self.blocks_per_level),
            ("num_heads", self.num_heads),
            ("window_size", self.window_size),
            ("time_dim", self.time_dim),
            ("groups", self.groups),
        ];
        check_positive("diffit_unet", &positive)?;
        check_bounds(
            "diffit_unet",
            &[
                ("image_size", self.image_size, MAX_SIDE),
                ("in_channels", self.in_channels, MAX_SIZE),
                ("blocks_per_level", self.blocks_per_level, MAX_DEPTH),
                ("time_dim", self.time_dim, MAX_SIZE),
                ("num_classes", self.num_classes, MAX_SIZE),
            ],
        )?;
        let levels = self.channels.len();
        if levels == 0 || levels > 8 {
            return Err(format!("diffit_unet: {levels} levels (channels has 1 to 8 entries)"));
        }
        if !self.image_size.is_multiple_of(1 << (levels - 1)) {
            return Err(format!("diffit_unet: image_size {} does not halve {} times", self.image_size, levels - 1));
        }
        for (level, &c) in self.channels.iter().enumerate() {
            check_bounds("diffit_unet", &[("channels", c, MAX_SIZE)])?;
            if c == 0 || !c.is_multiple_of(self.groups) || !c.is_multiple_of(self.num_heads) {
                return Err(format!(
                    "diffit_unet: channels {c} (level {level}) must be a positive multiple of groups {} and num_heads {}",
                    self.groups, self.num_heads
                ));
            }
            let window = self.block_spec(level).window;
            if !self.side(level).is_multiple_of(window) {
                return Err(format!("diffit_unet: level {level} side {} is not a multiple of its window {window}", self.side(level)));
            }
        }
        if !(self.mlp_ratio > 0.0 && self.mlp_ratio <= 64.0) {
            return Err(format!("diffit_unet: mlp_ratio {} out of range", self.mlp_ratio));
        }
        check_params("diffit_unet", &self.param_shapes())?;
        Ok(())
    }

    fn describe(&self) -> String {
        let join = |v: Vec<usize>| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("/");
        let levels = 0..self.channels.len();
        format!(
            "DiffiT image-space U-Net: input {}x{}x{}, {} levels (channels {}, sides {}, windows {}), {} ResBlocks per level and path, heads {}, time dim {}, {}, learn_sigma {}",
            self.in_channels,
            self.image_size,
            self.image_size,
            self.channels.len(),
            join(self.channels.clone()),
            join(levels.clone().map(|l| self.side(l)).collect()),
            join(levels.map(|l| self.block_spec(l).window).collect()),
            self.blocks_per_level,
            self.num_heads,
            self.time_dim,
            if self.num_classes > 0 { format!("{} classes", self.num_classes) } else { "unconditional".to_string() },
            self.learn_sigma
        )
    }

    /// The model's multiply-adds per image (a stride-2 conv counted at its output size, though
    /// the graph runs it at full size and keeps every other pixel).
    fn macs_per_image(&self) -> f64 {
        let conv = |side: usize, cin: usize, cout: usize| (side * side * cin * cout * 9) as f64;
        let (chans, last) = (&self.channels, self.channels.len() - 1);
        let td = self.time_dim as f64;
        let mut macs = FREQ_DIM as f64 * td + td * td + conv(self.image_size, self.in_channels, chans[0]);
        for (level, &c) in chans.iter().enumerate() {
            let side = self.side(level);
            let resblock = conv(side, c, c) + self.block_spec(level).macs(side * side);
            macs += 2.0 * self.blocks_per_level as f64 * resblock;
            if level < last {
                macs += conv(side / 2, c, chans[level + 1]) + conv(side, chans[level + 1], c);
            }
        }
        macs + conv(self.image_size, chans[0], self.out_channels())
    }

    /// Class-conditional (the null class last) only with num_classes > 0.
    fn io(&self) -> GraphIo {
        let classes = (self.num_classes > 0).then_some(self.num_classes);
        GraphIo {
            input: ModelInput::Image(ImageGeometry { channels: self.in_channels, height: self.image_size, width: self.image_size }),
            output_channels: self.out_channels(),
            num_classes: classes,
            null_class: classes.map(|k| k as u32),
            context: None,
        }
    }

    /// No official recipe: DDPM 250 steps on the linear schedule, unguided.
    fn sampling(&self) -> Result<BackboneSampling> {
        denoiser_sampling(self, (SamplerName::Ddpm, 250, 1.0), NoiseSchedule::Linear, GuidanceForm::Dit)
    }

    /// Keys in module order (weights-tools/archs/diffit_unet/reference.py).
    fn load(&self, mut p: Params) -> Result<Box<dyn Forward + '_>> {
        let (td, chans, last) = (self.time_dim, &self.channels, self.channels.len() - 1);
        let time = TimestepMlp::load(p.pp("t_embedder.mlp"), td)?;
        let label = if self.num_classes > 0 { Some(LabelTable::load(p.pp("y_embedder.embedding_table"), self.num_classes + 1, td)?) } else { None };
        let conv_in = Conv::load(p.pp("conv_in"), chans[0], self.in_channels, 3)?;
        let mut encoder = Vec::with_capacity(last + 1);
        let mut ep = p.pp("encoder");
        for level in 0..=last {
            let mut lp = ep.pp(level);
            let blocks = self.resblocks(&mut lp, level)?;
            let down = if level < last { Some(Conv::load(lp.pp("downsample"), chans[level + 1], chans[level], 3)?) } else { None };
            encoder.push((blocks, down));
        }
        let mut decoder = Vec::with_capacity(last + 1);
        let mut dp = p.pp("decoder");
        for level in 0..=last {
            let mut lp = dp.pp(level);
            let up = if level < last { Some(Conv::load(lp.pp("upsample"), chans[level], chans[level + 1], 3)?) } else { None };
            decoder.push((up, self.resblocks(&mut lp, level)?));
        }
        let norm_out = GroupNormLayer::load(p.pp("norm_out"), chans[0], self.groups, GN_EPS)?;
        let conv_out = Conv::load(p.pp("conv_out"), self.out_channels(), chans[0], 3)?;
        Ok(Box::new(DiffitUnet { cfg: self, time, label, conv_in, encoder, decoder, norm_out, conv_out }))
    }
}

/// A DiffiT ResBlock (Eq. 9-10) bound to its weights.
struct ResBlock {
    norm: GroupNormLayer,
    conv: Conv,
    transformer: DiffitBlock,
    spec: DiffitBlockSpec,
}

impl ResBlock {
    fn load(mut p: Params, cfg: &DiffitUnetConfig, level: usize) -> Result<ResBlock> {
        let (c, spec) = (cfg.channels[level], cfg.block_spec(level));
        Ok(ResBlock {
            norm: GroupNormLayer::load(p.pp("norm"), c, cfg.groups, GN_EPS)?,
            conv: Conv::load(p.pp("conv"), c, c, 3)?,
            transformer: DiffitBlock::load(p.pp("transformer"), spec)?,
            spec,
        })
    }

    /// x [batch, C, side, side] += DiffiT-Block(Conv3x3(SiLU(GN(x))), c), the block run on the
    /// pixels as token rows in window order.
    fn apply(&self, g: &mut GraphBuilder, x: View, cond: View, batch: usize, side: usize) {
        let spatial = side * side;
        let act = self.norm.apply(g, x, batch, spatial, true);
        let x_hat = self.conv.apply(g, act, batch, side, side);
        let grid = WindowGrid { batch, channels: self.spec.dim, side, window: self.spec.window };
        let rows = to_windows(g, x_hat, grid);
        self.transformer.apply(g, rows, cond, batch, spatial);
        let back = from_windows(g, rows, grid);
        g.push(Op::Add(Add { a: x, b: back, out: x }));
    }
}

struct DiffitUnet<'a> {
    cfg: &'a DiffitUnetConfig,
    time: TimestepMlp,
    label: Option<LabelTable>,
    conv_in: Conv,
    /// Per level, finest first: ResBlocks, then (but for the bottom) the stride-2 conv.
    encoder: Vec<(Vec<ResBlock>, Option<Conv>)>,
    /// Per level, finest first: (but for the bottom) the upsampling conv, then ResBlocks.
    decoder: Vec<(Option<Conv>, Vec<ResBlock>)>,
    norm_out: GroupNormLayer,
    conv_out: Conv,
}

impl Forward for DiffitUnet<'_> {
    fn forward(&self, g: &mut GraphBuilder, batch: usize) {
        let (cfg, s) = (self.cfg, self.cfg.image_size);
        let x = g.input("x", [batch, cfg.in_channels, s, s], g.dtype());
        let t = g.input("t", [batch], DType::F32);
        let cond = self.time.apply(g, t, batch);
        if let Some(table) = &self.label {
            let y = g.input("y", [batch], DType::U32);
            let label = table.apply(g, y, batch);
            g.push(Op::Add(Add { a: cond, b: label, out: cond }));
        }

        let mut h = self.conv_in.apply(g, x, batch, s, s);
        let mut skips = Vec::with_capacity(self.encoder.len());
        for (level, (blocks, down)) in self.encoder.iter().enumerate() {
            let side = cfg.side(level);
            for block in blocks {
                block.apply(g, h, cond, batch, side);
            }
            if let Some(down) = down {
                skips.push(h);
                h = down.apply_stride2(g, h, batch, side, side);
            }
        }
        for (level, (up, blocks)) in self.decoder.iter().enumerate().rev() {
            let side = cfg.side(level);
            if let Some(up) = up {
                let below = cfg.channels[level + 1];
                let wide = g.temp([batch, below, side, side]);
                g.push(Op::Upsample2x(Upsample2x { batch, channels: below, height: side / 2, width: side / 2, x: h, out: wide }));
                h = up.apply(g, wide, batch, side, side);
                let skip = skips.pop().expect("one skip per level above the bottom");
                g.push(Op::Add(Add { a: h, b: skip, out: h }));
            }
            for block in blocks {
                block.apply(g, h, cond, batch, side);
            }
        }

        let act = self.norm_out.apply(g, h, batch, s * s, true);
        let out = g.output("out", [batch, cfg.out_channels(), s, s]);
        self.conv_out.apply_into(g, act, batch, s, s, out);
    }
}
