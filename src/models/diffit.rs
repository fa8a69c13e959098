//! Latent DiffiT (Hatamizadeh et al., arXiv 2312.02139) as NVlabs/DiffiT's released checkpoint
//! computes it (diffit/diffit.py): DiT's patch embedding, fixed position table, timestep MLP
//! and label table; c = t_emb + y_emb feeds every block's TMSA (no adaLN); the attention window
//! is the whole patch grid, so attention is global plus a per-head N x N relative position bias;
//! final Linear(SiLU(LN(x))) -> p^2 * 2C, official unpatchify order.
use serde::{Deserialize, Serialize};

use crate::backend::{Activation, Add, LayerNorm, Op, PatchGeometry, Unary, Unpatchify};
use crate::error::{Error, Result};
use crate::graph::{Graph, GraphBuilder};
use crate::models::diffit_block::{DiffitBlock, DiffitBlockSpec};
use crate::models::dit::FREQ_DIM;
use crate::models::embedders::{embedder_shapes, label_embedding, patch_tokens, timestep_mlp};
use crate::models::layers::Linear;
use crate::models::sizes::TransformerSizes;
use crate::models::weight_source::WeightSource;
use crate::tensor::DType;

const LN_EPS: f32 = 1e-6;

/// DiT's fields (the latent model has DiT's embedders and sizes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffitConfig {
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

impl DiffitConfig {
    /// The released model (diffit.py `Diffit`: depth 28, width 1152, 16 heads, patch 2):
    /// "DiffiT-XL/2" (256 px, latent 32) or "DiffiT-XL/2-512" (latent 64).
    pub fn preset(name: &str) -> Option<DiffitConfig> {
        let res = match name {
            "DiffiT-XL/2" => 256,
            "DiffiT-XL/2-512" => 512,
            _ => return None,
        };
        Some(DiffitConfig {
            input_size: res / 8,
            patch_size: 2,
            in_channels: 4,
            hidden_size: 1152,
            depth: 28,
            num_heads: 16,
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

    fn grid(&self) -> usize {
        self.input_size / self.patch_size
    }

    fn tokens(&self) -> usize {
        self.grid() * self.grid()
    }

    fn block_spec(&self) -> DiffitBlockSpec {
        let d = self.hidden_size;
        // The official window is the patch grid (diffit.py: window_size = input_size // patch_size).
        DiffitBlockSpec { dim: d, heads: self.num_heads, mlp_hidden: (d as f64 * self.mlp_ratio) as usize, temb_dim: d, window: self.grid() }
    }

    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        TransformerSizes {
            arch: "diffit",
            input_size: self.input_size,
            patch_size: self.patch_size,
            in_channels: self.in_channels,
            hidden_size: self.hidden_size,
            depth: self.depth,
            num_heads: self.num_heads,
            mlp_ratio: self.mlp_ratio,
            num_classes: self.num_classes,
        }
        .check(|| self.param_shapes())?;
        // The graph holds each block's gathered bias densely: heads x N x N values.
        let dense_bias = [self.depth, self.num_heads, self.tokens(), self.tokens()].iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if dense_bias.is_none_or(|n| n > 1 << 32) {
            let count = dense_bias.map_or("too many".to_string(), |n| n.to_string());
            return Err(format!("diffit: config too large ({count} relative-position bias values, at most {})", 1u64 << 32));
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        let name =
            if (self.depth, self.hidden_size, self.num_heads, self.patch_size) == (28, 1152, 16, 2) { "DiffiT-XL/2" } else { "DiffiT (custom)" };
        format!(
            "{name}: depth {}, width {}, heads {} (head dim {}), patch {}, input {}x{}x{}, {} tokens (attention window {}x{}, relative position bias), {} classes, learn_sigma {}",
            self.depth,
            self.hidden_size,
            self.num_heads,
            self.hidden_size / self.num_heads,
            self.patch_size,
            self.in_channels,
            self.input_size,
            self.input_size,
            self.tokens(),
            self.grid(),
            self.grid(),
            self.num_classes,
            self.learn_sigma
        )
    }

    /// Official parameters and shapes in checkpoint order. The checkpoint's
    /// `relative_position_index` buffers are not parameters (the paper's 561M counts
    /// `model.parameters()`); the converter checks and drops them.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, c, p) = (self.hidden_size, self.in_channels, self.patch_size);
        let mut v = embedder_shapes(self.tokens(), d, c, p, self.num_classes);
        let spec = self.block_spec();
        for i in 0..self.depth {
            v.extend(spec.param_shapes(&format!("blocks.{i}")));
        }
        let out = p * p * self.out_channels();
        v.extend([("final_layer.linear.weight".into(), vec![out, d]), ("final_layer.linear.bias".into(), vec![out])]);
        v
    }

    /// Multiply-adds per image: patch embedding, timestep MLP, the blocks (DiffitBlockSpec::macs)
    /// and the final linear.
    pub fn macs_per_image(&self) -> f64 {
        let (n, d) = (self.tokens() as f64, self.hidden_size as f64);
        let (c, p, co) = (self.in_channels as f64, self.patch_size as f64, self.out_channels() as f64);
        let embed = n * c * p * p * d + FREQ_DIM as f64 * d + d * d;
        embed + self.depth as f64 * self.block_spec().macs(self.tokens()) + n * d * p * p * co
    }
}

pub fn build(cfg: &DiffitConfig, w: &mut dyn WeightSource, batch: usize, dtype: DType) -> Result<Graph> {
    cfg.validate().map_err(Error::invalid)?;
    let (d, s, p, n) = (cfg.hidden_size, cfg.input_size, cfg.patch_size, cfg.tokens());
    let rows = batch * n;
    let mut g = GraphBuilder::new(dtype);

    let x = g.input("x", [batch, cfg.in_channels, s, s], dtype);
    let t = g.input("t", [batch], DType::F32);
    let y = g.input("y", [batch], DType::U32);
    let geom = PatchGeometry { batch, channels: cfg.in_channels, height: s, width: s, patch: p };
    let h = patch_tokens(&mut g, w, x, geom, d)?;

    // c = t_emb + y_emb, the input of every block's qkv_temb.
    let cond = timestep_mlp(&mut g, w, "t_embedder.mlp", t, batch, d)?;
    let label = label_embedding(&mut g, w, "y_embedder.embedding_table.weight", y, batch, cfg.num_classes + 1, d)?;
    g.push(Op::Add(Add { a: cond, b: label, out: cond }));

    let spec = cfg.block_spec();
    for i in 0..cfg.depth {
        DiffitBlock::load(&mut g, w, &format!("blocks.{i}"), spec)?.apply(&mut g, h, cond, batch, n);
    }

    // Final layer: Linear(SiLU(LN(x))), LN without affine.
    let co = cfg.out_channels();
    let normed = g.temp([rows, d]);
    g.push(Op::LayerNorm(LayerNorm { rows, dim: d, eps: LN_EPS, x: h, gamma: None, beta: None, out: normed }));
    g.push(Op::Unary(Unary { act: Activation::Silu, x: normed, out: normed }));
    let linear = Linear::load(&mut g, w, "final_layer.linear", &[p * p * co, d], true)?;
    let tokens = linear.apply(&mut g, normed, rows, Activation::None);
    let out = g.output("out", [batch, co, s, s]);
    let geom = PatchGeometry { batch, channels: co, height: s, width: s, patch: p };
    g.push(Op::Unpatchify(Unpatchify { geom, x: tokens, out }));
    g.finish()
}
