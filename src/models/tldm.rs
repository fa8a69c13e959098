//! In-context transformer LDM (Chahal, arXiv 2212.14678): a plain pre-LN transformer over
//! the latent's patch tokens with the time and class embeddings as two extra tokens of the
//! same sequence — no cross-attention, no adaLN. The paper releases no code; the choices
//! (DiT's sizes, embedders, key names and learned sigma) are listed in README.md,
//! "In-context transformer LDM: our choices".
use serde::{Deserialize, Serialize};

use crate::backend::{Activation, Op, PatchGeometry, Unpatchify};
use crate::error::{Error, Result};
use crate::graph::{Graph, GraphBuilder};
use crate::models::dit::{FamilyPreset, FREQ_DIM};
use crate::models::embedders::{embedder_shapes, label_embedding, patch_tokens, timestep_mlp};
use crate::models::layers::{copy_tokens, AffineLayerNorm, Linear, PreNormBlock, PreNormBlockSpec, TokenSpan};
use crate::models::sizes::TransformerSizes;
use crate::models::weight_source::WeightSource;
use crate::tensor::DType;

/// DiT's LayerNorm eps, kept for its blocks' plain-LN twins.
const LN_EPS: f32 = 1e-6;
/// Sequence order: [time, class, patches].
const TIME_TOKEN: usize = 0;
const CLASS_TOKEN: usize = 1;
const EXTRAS: usize = 2;

/// Same fields and meaning as `DitConfig`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TldmConfig {
    /// Latent height = width.
    pub input_size: usize,
    pub patch_size: usize,
    pub in_channels: usize,
    pub hidden_size: usize,
    pub depth: usize,
    pub num_heads: usize,
    pub mlp_ratio: f64,
    /// Classes without the null class; the label table has num_classes + 1 rows.
    pub num_classes: usize,
    /// Output 2C channels [eps | v] for the learned variance.
    pub learn_sigma: bool,
}

impl TldmConfig {
    /// "TLDM-XL/2" (256 px, latent 32) or "TLDM-XL/2-512" (latent 64), DiT's size family:
    /// S/B/L/XL with patch 2, 4 or 8, ImageNet classes, learned sigma.
    pub fn preset(name: &str) -> Option<TldmConfig> {
        let FamilyPreset { depth, hidden_size, num_heads, patch, res } = FamilyPreset::parse(name.strip_prefix("TLDM-")?)?;
        Some(TldmConfig {
            input_size: res / 8,
            patch_size: patch,
            in_channels: 4,
            hidden_size,
            depth,
            num_heads,
            mlp_ratio: 4.0,
            num_classes: 1000,
            learn_sigma: true,
        })
    }

    pub fn out_channels(&self) -> usize {
        if self.learn_sigma {
            2 * self.in_channels
        } else {
            self.in_channels
        }
    }

    fn patches(&self) -> usize {
        (self.input_size / self.patch_size).pow(2)
    }

    fn block_spec(&self) -> PreNormBlockSpec {
        PreNormBlockSpec {
            dim: self.hidden_size,
            heads: self.num_heads,
            mlp_hidden: (self.hidden_size as f64 * self.mlp_ratio) as usize,
            qkv_bias: true,
            act: Activation::GeluTanh,
            eps: LN_EPS,
        }
    }

    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        if self.num_classes == 0 {
            return Err("tldm: num_classes must be positive".into());
        }
        TransformerSizes {
            arch: "tldm",
            input_size: self.input_size,
            patch_size: self.patch_size,
            in_channels: self.in_channels,
            hidden_size: self.hidden_size,
            depth: self.depth,
            num_heads: self.num_heads,
            mlp_ratio: self.mlp_ratio,
            num_classes: self.num_classes,
        }
        .check(|| self.param_shapes())
    }

    pub fn describe(&self) -> String {
        let size = FamilyPreset::size_name(self.depth, self.hidden_size, self.num_heads)
            .map(|s| format!("TLDM-{s}/{}", self.patch_size))
            .unwrap_or_else(|| format!("TLDM (custom)/{}", self.patch_size));
        format!(
            "{size}: depth {}, width {}, heads {} (head dim {}), patch {}, input {}x{}x{}, {} tokens + time and class tokens, {} classes, learn_sigma {}",
            self.depth,
            self.hidden_size,
            self.num_heads,
            self.hidden_size / self.num_heads,
            self.patch_size,
            self.in_channels,
            self.input_size,
            self.input_size,
            self.patches(),
            self.num_classes,
            self.learn_sigma
        )
    }

    /// Checkpoint keys and shapes (ours, DiT-style names), in module order.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, c, p, co) = (self.hidden_size, self.in_channels, self.patch_size, self.out_channels());
        let mut v = embedder_shapes(self.patches(), d, c, p, self.num_classes);
        let spec = self.block_spec();
        for i in 0..self.depth {
            v.extend(spec.param_shapes(&format!("blocks.{i}")));
        }
        v.extend([
            ("final_layer.norm_final.weight".into(), vec![d]),
            ("final_layer.norm_final.bias".into(), vec![d]),
            ("final_layer.linear.weight".into(), vec![p * p * co, d]),
            ("final_layer.linear.bias".into(), vec![p * p * co]),
        ]);
        v
    }

    /// Multiply-adds per image: every linear layer (the output linear over the patch tokens
    /// only), plus QK^T and AV (2 N^2 D per block) over patches + 2 condition tokens.
    pub fn macs_per_image(&self) -> f64 {
        let (d, c, p, co) = (self.hidden_size as f64, self.in_channels as f64, self.patch_size as f64, self.out_channels() as f64);
        let l = self.patches() as f64;
        let embed = l * c * p * p * d + FREQ_DIM as f64 * d + d * d;
        let blocks = self.depth as f64 * self.block_spec().macs(self.patches() + EXTRAS);
        embed + blocks + l * d * p * p * co
    }
}

pub fn build(cfg: &TldmConfig, w: &mut dyn WeightSource, batch: usize, dtype: DType) -> Result<Graph> {
    cfg.validate().map_err(Error::invalid)?;
    let (d, c, p, s) = (cfg.hidden_size, cfg.in_channels, cfg.patch_size, cfg.input_size);
    let patches = cfg.patches();
    let n = EXTRAS + patches;
    let mut g = GraphBuilder::new(dtype);

    let x = g.input("x", [batch, c, s, s], dtype);
    let t = g.input("t", [batch], DType::F32);
    let y = g.input("y", [batch], DType::U32);
    let seq = g.temp([batch * n, d]);
    let at = |first: usize| TokenSpan { buf: seq, len: n, first };

    // Patch tokens plus the fixed position table (patches only).
    let geom = PatchGeometry { batch, channels: c, height: s, width: s, patch: p };
    let tokens = patch_tokens(&mut g, w, x, geom, d)?;
    copy_tokens(&mut g, batch, patches, d, TokenSpan::whole(tokens, patches), at(EXTRAS));

    // Time token: DiT's embedder, MLP(256 timestep features).
    let time = timestep_mlp(&mut g, w, "t_embedder.mlp", t, batch, d)?;
    copy_tokens(&mut g, batch, 1, d, TokenSpan::whole(time, 1), at(TIME_TOKEN));

    // Class token: label table with the null class last.
    let label = label_embedding(&mut g, w, "y_embedder.embedding_table.weight", y, batch, cfg.num_classes + 1, d)?;
    copy_tokens(&mut g, batch, 1, d, TokenSpan::whole(label, 1), at(CLASS_TOKEN));

    let spec = cfg.block_spec();
    for i in 0..cfg.depth {
        PreNormBlock::load(&mut g, w, &format!("blocks.{i}"), spec)?.apply(&mut g, seq, batch, n);
    }

    // Final layer on the patch tokens only (LN and the linear act per token).
    let kept = g.temp([batch * patches, d]);
    copy_tokens(&mut g, batch, patches, d, at(EXTRAS), TokenSpan::whole(kept, patches));
    let normed = AffineLayerNorm::load(&mut g, w, "final_layer.norm_final", d, LN_EPS)?.apply(&mut g, kept, batch * patches);
    let co = cfg.out_channels();
    let linear = Linear::load(&mut g, w, "final_layer.linear", &[p * p * co, d], true)?;
    let pred = linear.apply(&mut g, normed, batch * patches, Activation::None);
    let out = g.output("out", [batch, co, s, s]);
    let geom = PatchGeometry { batch, channels: co, height: s, width: s, patch: p };
    g.push(Op::Unpatchify(Unpatchify { geom, x: pred, out }));
    g.finish()
}
