//! What U-ViT's class-conditional (uvit.rs) and text-to-image (uvit_t2i.rs) networks share
//! (baofff/U-ViT libs/uvit.py, libs/uvit_t2i.py): the size rules of the official nnet config,
//! and the network around the condition tokens — patch embedding, the time token (timestep
//! features of width D, or their MLP), one learned position table over every token, depth/2
//! in-blocks, a mid-block and depth/2 out-blocks joined by long skips taken last-in-first-out,
//! LN -> decoder_pred -> drop the extra tokens -> unpatchify -> optional 3x3 conv.
use serde::{Deserialize, Serialize};

use crate::backend::{Activation, Add, Conv2d, Op, PatchGeometry, Patchify, SkipConcatLinear, TimestepEmbedding, Unpatchify, View};
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::backbone::Forward;
use crate::models::layers::{copy_tokens, AffineLayerNorm, Linear, PreNormBlock, PreNormBlockSpec, TokenSpan};
use crate::models::params::Params;
use crate::models::sizes::{check_bounds, check_positive, MAX_DEPTH, MAX_SIDE, MAX_SIZE};
use crate::tensor::DType;

/// nn.LayerNorm's default eps (the official blocks keep it).
const LN_EPS: f32 = 1e-5;

/// Official sizes: (name, embed_dim, depth, heads).
pub const SIZES: &[(&str, usize, usize, usize)] = &[("S", 512, 12, 8), ("M", 768, 16, 12), ("L", 1024, 20, 16), ("H", 1152, 28, 16)];

/// The official nnet fields both U-ViT configs share.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UvitSizes {
    /// Input height = width (pixels, or latent size for the latent models).
    pub img_size: usize,
    pub patch_size: usize,
    pub in_chans: usize,
    pub embed_dim: usize,
    /// depth/2 in-blocks, one mid-block, depth/2 out-blocks (an odd depth rounds down, as the
    /// official code does).
    pub depth: usize,
    pub num_heads: usize,
    pub mlp_ratio: f64,
    /// Time token = MLP(timestep features) (Linear D->4D, SiLU, Linear 4D->D) instead of the
    /// features themselves.
    pub mlp_time_embed: bool,
    /// A 3x3 conv C->C after unpatchify (`final_layer`).
    pub conv: bool,
}

/// A U-ViT's sizes and the layout of its extra tokens.
#[derive(Clone, Copy, Debug)]
pub struct UvitShape {
    pub sizes: UvitSizes,
    /// Condition tokens (label or text) beside the time token.
    pub cond_tokens: usize,
    /// [time, conditions, patches] (text-to-image) rather than [conditions, time, patches].
    pub time_first: bool,
}

impl std::ops::Deref for UvitShape {
    type Target = UvitSizes;
    fn deref(&self) -> &UvitSizes {
        &self.sizes
    }
}

/// The condition tokens of a U-ViT: bound between the time MLP and the blocks (their place in
/// the official state_dict) and written into the token sequence before the positions are added.
pub trait UvitCondition {
    /// Writes the `cond_tokens` condition tokens (width `dim`) of each sample into `seq`, from
    /// `seq.first`.
    fn apply(&self, g: &mut GraphBuilder, batch: usize, dim: usize, seq: TokenSpan);
}

impl UvitShape {
    /// Tokens before the patches.
    pub fn extras(&self) -> usize {
        self.cond_tokens + 1
    }

    pub fn patches(&self) -> usize {
        (self.img_size / self.patch_size).pow(2)
    }

    /// Long skips = in-blocks = out-blocks.
    pub fn skips(&self) -> usize {
        self.depth / 2
    }

    fn time_token(&self) -> usize {
        if self.time_first {
            0
        } else {
            self.cond_tokens
        }
    }

    fn first_condition(&self) -> usize {
        usize::from(self.time_first)
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

    /// The shared size rules; `bounds` adds the arch's own (name, value, largest).
    pub fn validate(&self, arch: &str, bounds: &[(&str, usize, usize)]) -> std::result::Result<(), String> {
        let positive = [
            ("img_size", self.img_size),
            ("patch_size", self.patch_size),
            ("in_chans", self.in_chans),
            ("embed_dim", self.embed_dim),
            ("num_heads", self.num_heads),
        ];
        check_positive(arch, &positive)?;
        let shared = [
            ("img_size", self.img_size, MAX_SIDE),
            ("in_chans", self.in_chans, MAX_SIZE),
            ("embed_dim", self.embed_dim, MAX_SIZE),
            ("depth", self.depth, MAX_DEPTH),
        ];
        check_bounds(arch, &[&shared[..], bounds].concat())?;
        if !self.img_size.is_multiple_of(self.patch_size) {
            return Err(format!("{arch}: img_size {} is not a multiple of patch_size {}", self.img_size, self.patch_size));
        }
        if !self.embed_dim.is_multiple_of(self.num_heads) {
            return Err(format!("{arch}: embed_dim {} is not a multiple of num_heads {}", self.embed_dim, self.num_heads));
        }
        if !(self.mlp_ratio > 0.0 && self.mlp_ratio <= 64.0) {
            return Err(format!("{arch}: mlp_ratio {} out of range", self.mlp_ratio));
        }
        Ok(())
    }

    /// "U-ViT-S/2: depth .., <condition>, .." with the official size name where one fits.
    pub fn describe(&self, condition: &str) -> String {
        let size = SIZES
            .iter()
            .find(|s| s.1 == self.embed_dim && s.2 == self.depth && s.3 == self.num_heads)
            .map(|s| format!("U-ViT-{}/{}", s.0, self.patch_size))
            .unwrap_or_else(|| format!("U-ViT (custom)/{}", self.patch_size));
        let (d, s) = (self.embed_dim, self.img_size);
        format!(
            "{size}: depth {} ({} in, mid, {} out), width {d}, heads {} (head dim {}), patch {}, input {}x{s}x{s}, {} tokens + {} extra, {condition}, mlp_time_embed {}, output conv {}",
            self.depth,
            self.skips(),
            self.skips(),
            self.num_heads,
            d / self.num_heads,
            self.patch_size,
            self.in_chans,
            self.patches(),
            self.extras(),
            self.mlp_time_embed,
            self.conv
        )
    }

    /// Multiply-adds per image but the condition embedder's: every linear layer (the decoder
    /// only over the patch tokens, as ditrt computes it), QK^T and AV (2 N^2 D per block), and
    /// the output conv.
    pub fn macs(&self) -> f64 {
        let (d, c, p) = (self.embed_dim as f64, self.in_chans as f64, self.patch_size as f64);
        let (l, n) = (self.patches() as f64, (self.extras() + self.patches()) as f64);
        let embed = l * c * p * p * d + if self.mlp_time_embed { 8.0 * d * d } else { 0.0 };
        let blocks = (2 * self.skips() + 1) as f64 * self.block_spec().macs(self.extras() + self.patches());
        let skips = self.skips() as f64 * n * 2.0 * d * d;
        let head = l * d * p * p * c + if self.conv { (self.img_size * self.img_size) as f64 * c * c * 9.0 } else { 0.0 };
        embed + blocks + skips + head
    }

    /// Official checkpoint keys, in checkpoint (module) order, the condition embedder's bound by
    /// `condition` after the time MLP.
    pub fn load<C: UvitCondition + 'static>(self, mut p: Params, condition: impl FnOnce(&mut Params) -> Result<C>) -> Result<Box<dyn Forward>> {
        let (d, c, k, spec) = (self.embed_dim, self.in_chans, self.patch_size, self.block_spec());
        let pos = p.tensor("pos_embed", &[1, self.extras() + self.patches(), d])?;
        let patch_embed = Linear::load(p.pp("patch_embed.proj"), &[d, c, k, k], true)?;
        let time_embed = if self.mlp_time_embed {
            Some([Linear::load(p.pp("time_embed.0"), &[4 * d, d], true)?, Linear::load(p.pp("time_embed.2"), &[d, 4 * d], true)?])
        } else {
            None
        };
        let condition = condition(&mut p)?;
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
        Ok(Box::new(Uvit { shape: self, pos, patch_embed, time_embed, condition, in_blocks, mid_block, out_blocks, norm, decoder_pred, conv }))
    }
}

/// A U-ViT with its parameters bound.
struct Uvit<C> {
    shape: UvitShape,
    pos: View,
    patch_embed: Linear,
    /// The time MLP (D -> 4D, SiLU, 4D -> D), where configured.
    time_embed: Option<[Linear; 2]>,
    condition: C,
    in_blocks: Vec<PreNormBlock>,
    mid_block: PreNormBlock,
    /// Each out-block with its skip_linear.
    out_blocks: Vec<(PreNormBlock, Linear)>,
    norm: AffineLayerNorm,
    decoder_pred: Linear,
    conv: Option<Linear>,
}

impl<C: UvitCondition> Forward for Uvit<C> {
    fn forward(&self, g: &mut GraphBuilder, batch: usize) {
        let cfg = &self.shape;
        let (d, c, p, s) = (cfg.embed_dim, cfg.in_chans, cfg.patch_size, cfg.img_size);
        let (extras, patches) = (cfg.extras(), cfg.patches());
        let n = extras + patches;
        let rows = batch * n;

        let x = g.input("x", [batch, c, s, s], g.dtype());
        let t = g.input("t", [batch], DType::F32);
        let seq = g.temp([rows, d]);
        let at = |first: usize| TokenSpan { buf: seq, len: n, first };

        // Patch tokens (a conv with kernel = stride = p is a GEMM over patches) after the extras.
        let geom = PatchGeometry { batch, channels: c, height: s, width: s, patch: p };
        let pixels = g.temp([batch, patches, c * p * p]);
        g.push(Op::Patchify(Patchify { geom, x, out: pixels }));
        let tokens = self.patch_embed.apply(g, pixels, batch * patches, Activation::None);
        copy_tokens(g, batch, patches, d, TokenSpan::whole(tokens, patches), at(extras));

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
        copy_tokens(g, batch, 1, d, TokenSpan::whole(time, 1), at(cfg.time_token()));
        self.condition.apply(g, batch, d, at(cfg.first_condition()));
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
