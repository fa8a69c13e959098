//! DiT (Peebles & Xie, arXiv 2212.09748) exactly as the official checkpoints compute it:
//! patch embedding + fixed position table, c = MLP(timestep features) + label embedding,
//! adaLN-Zero blocks, final adaLN + linear, official unpatchify order.
use serde::{Deserialize, Serialize};

use crate::backend::{Activation, Add, GateResidual, LayerNormModulate, Op, PatchGeometry, PerSample, Unary, Unpatchify, View};
use crate::error::{Error, Result};
use crate::graph::{Graph, GraphBuilder};
use crate::models::embedders::{embedder_shapes, label_embedding, patch_tokens, timestep_mlp};
use crate::models::layers::{concat_rows, packed_attention, Linear};
use crate::models::sizes::TransformerSizes;
use crate::models::weight_source::WeightSource;
use crate::tensor::DType;

/// Width of the sinusoidal timestep features (DiT's `frequency_embedding_size`).
pub const FREQ_DIM: usize = 256;
const LN_EPS: f32 = 1e-6;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DitConfig {
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

/// The official sizes: (name, depth, width, heads).
pub const SIZES: &[(&str, usize, usize, usize)] = &[("S", 12, 384, 6), ("B", 12, 768, 12), ("L", 24, 1024, 16), ("XL", 28, 1152, 16)];

/// A member of DiT's size family named "<size>/<patch>[-<resolution>]" ("XL/2", "XL/2-512"):
/// sizes S/B/L/XL, patch 2, 4 or 8, resolution 256 (default) or 512 px.
pub(crate) struct FamilyPreset {
    pub depth: usize,
    pub hidden_size: usize,
    pub num_heads: usize,
    pub patch: usize,
    pub res: usize,
}

impl FamilyPreset {
    pub fn parse(name: &str) -> Option<FamilyPreset> {
        let (size, rest) = name.split_once('/')?;
        let (patch, res) = match rest.split_once('-') {
            Some((p, r)) => (p, r.parse::<usize>().ok()?),
            None => (rest, 256),
        };
        let patch: usize = patch.parse().ok()?;
        let &(_, depth, hidden_size, num_heads) = SIZES.iter().find(|s| s.0 == size)?;
        if ![2, 4, 8].contains(&patch) || ![256, 512].contains(&res) {
            return None;
        }
        Some(FamilyPreset { depth, hidden_size, num_heads, patch, res })
    }

    /// The size name ("XL") of (depth, width, heads), if it is one of the family's.
    pub fn size_name(depth: usize, hidden_size: usize, num_heads: usize) -> Option<&'static str> {
        SIZES.iter().find(|s| s.1 == depth && s.2 == hidden_size && s.3 == num_heads).map(|s| s.0)
    }
}

impl DitConfig {
    /// "DiT-XL/2" (256 px, latent 32) or "DiT-XL/2-512" (latent 64): an ImageNet class-conditional
    /// latent model with learned sigma.
    pub fn preset(name: &str) -> Option<DitConfig> {
        let FamilyPreset { depth, hidden_size, num_heads, patch, res } = FamilyPreset::parse(name.strip_prefix("DiT-")?)?;
        Some(DitConfig {
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

    fn mlp_hidden(&self) -> usize {
        (self.hidden_size as f64 * self.mlp_ratio) as usize
    }

    fn tokens(&self) -> usize {
        (self.input_size / self.patch_size).pow(2)
    }

    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        TransformerSizes {
            arch: "dit",
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
            .map(|s| format!("DiT-{s}/{}", self.patch_size))
            .unwrap_or_else(|| format!("DiT (custom)/{}", self.patch_size));
        format!(
            "{size}: depth {}, width {}, heads {} (head dim {}), patch {}, input {}x{}x{}, {} tokens, {} classes, learn_sigma {}",
            self.depth,
            self.hidden_size,
            self.num_heads,
            self.hidden_size / self.num_heads,
            self.patch_size,
            self.in_channels,
            self.input_size,
            self.input_size,
            self.tokens(),
            self.num_classes,
            self.learn_sigma
        )
    }

    /// Official checkpoint keys and shapes, in checkpoint order.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, c, p, h) = (self.hidden_size, self.in_channels, self.patch_size, self.mlp_hidden());
        let mut v = embedder_shapes(self.tokens(), d, c, p, self.num_classes);
        for i in 0..self.depth {
            let b = format!("blocks.{i}");
            v.extend([
                (format!("{b}.attn.qkv.weight"), vec![3 * d, d]),
                (format!("{b}.attn.qkv.bias"), vec![3 * d]),
                (format!("{b}.attn.proj.weight"), vec![d, d]),
                (format!("{b}.attn.proj.bias"), vec![d]),
                (format!("{b}.mlp.fc1.weight"), vec![h, d]),
                (format!("{b}.mlp.fc1.bias"), vec![h]),
                (format!("{b}.mlp.fc2.weight"), vec![d, h]),
                (format!("{b}.mlp.fc2.bias"), vec![d]),
                (format!("{b}.adaLN_modulation.1.weight"), vec![6 * d, d]),
                (format!("{b}.adaLN_modulation.1.bias"), vec![6 * d]),
            ]);
        }
        v.extend([
            ("final_layer.linear.weight".into(), vec![p * p * self.out_channels(), d]),
            ("final_layer.linear.bias".into(), vec![p * p * self.out_channels()]),
            ("final_layer.adaLN_modulation.1.weight".into(), vec![2 * d, d]),
            ("final_layer.adaLN_modulation.1.bias".into(), vec![2 * d]),
        ]);
        v
    }

    /// Multiply-adds per image: every linear layer, plus QK^T and AV (2 N^2 D per block).
    pub fn macs_per_image(&self) -> f64 {
        let (n, d, h) = (self.tokens() as f64, self.hidden_size as f64, self.mlp_hidden() as f64);
        let (c, p, co) = (self.in_channels as f64, self.patch_size as f64, self.out_channels() as f64);
        let embed = n * c * p * p * d + FREQ_DIM as f64 * d + d * d;
        let block = n * (4.0 * d * d + 2.0 * d * h) + 2.0 * n * n * d + 6.0 * d * d;
        let last = 2.0 * d * d + n * d * p * p * co;
        embed + self.depth as f64 * block + last
    }
}

/// `len` elements per sample at `start` of each row of a [batch, stride] buffer.
fn per_sample(buf: View, batch: usize, stride: usize, start: usize, len: usize) -> PerSample {
    PerSample { view: buf.slice(start, (batch - 1) * stride + len), stride }
}

pub fn build(cfg: &DitConfig, w: &mut dyn WeightSource, batch: usize, dtype: DType) -> Result<Graph> {
    cfg.validate().map_err(Error::invalid)?;
    let (d, c, p, s) = (cfg.hidden_size, cfg.in_channels, cfg.patch_size, cfg.input_size);
    let (n, heads, hid) = (cfg.tokens(), cfg.num_heads, cfg.mlp_hidden());
    let rows = batch * n;
    let mut g = GraphBuilder::new(dtype);

    let x = g.input("x", [batch, c, s, s], dtype);
    let t = g.input("t", [batch], DType::F32);
    let y = g.input("y", [batch], DType::U32);

    let geom = PatchGeometry { batch, channels: c, height: s, width: s, patch: p };
    let h = patch_tokens(&mut g, w, x, geom, d)?;

    // c = MLP(timestep features) + label embedding; every adaLN consumes SiLU(c).
    let cond = timestep_mlp(&mut g, w, "t_embedder.mlp", t, batch, d)?;
    let y_emb = label_embedding(&mut g, w, "y_embedder.embedding_table.weight", y, batch, cfg.num_classes + 1, d)?;
    g.push(Op::Add(Add { a: cond, b: y_emb, out: cond }));
    g.push(Op::Unary(Unary { act: Activation::Silu, x: cond, out: cond }));

    // The modulation vectors of every block and of the final layer in one GEMM per step:
    // row b = [blocks.0 (6D) | blocks.1 (6D) | ... | final (2D)].
    let mut mod_w = Vec::with_capacity(cfg.depth + 1);
    let mut mod_b = Vec::with_capacity(cfg.depth + 1);
    for i in 0..=cfg.depth {
        let (prefix, width) =
            if i < cfg.depth { (format!("blocks.{i}.adaLN_modulation.1"), 6 * d) } else { ("final_layer.adaLN_modulation.1".to_string(), 2 * d) };
        mod_w.push(w.fetch(&format!("{prefix}.weight"), &[width, d])?);
        mod_b.push(w.fetch(&format!("{prefix}.bias"), &[width])?);
    }
    let mod_width = cfg.depth * 6 * d + 2 * d;
    let all_mod = Linear {
        w: g.weight("adaLN_modulation (all blocks)", concat_rows(&mod_w)),
        b: Some(g.weight("adaLN_modulation bias (all blocks)", concat_rows(&mod_b))),
        n: mod_width,
        k: d,
    };
    let mods = all_mod.apply(&mut g, cond, batch, Activation::None);
    let chunk = |j: usize| per_sample(mods, batch, mod_width, j * d, d);

    for i in 0..cfg.depth {
        let b = format!("blocks.{i}");
        let qkv_l = Linear::load(&mut g, w, &format!("{b}.attn.qkv"), &[3 * d, d], true)?;
        let proj_l = Linear::load(&mut g, w, &format!("{b}.attn.proj"), &[d, d], true)?;
        let fc1 = Linear::load(&mut g, w, &format!("{b}.mlp.fc1"), &[hid, d], true)?;
        let fc2 = Linear::load(&mut g, w, &format!("{b}.mlp.fc2"), &[d, hid], true)?;
        let base = i * 6;
        // (shift, scale, gate) for attention, then for the MLP.
        let [shift1, scale1, gate1, shift2, scale2, gate2] = std::array::from_fn(|j| chunk(base + j));

        let a = g.temp([rows, d]);
        g.push(Op::LayerNormModulate(LayerNormModulate { batch, tokens: n, dim: d, eps: LN_EPS, x: h, shift: shift1, scale: scale1, out: a }));
        let qkv = qkv_l.apply(&mut g, a, rows, Activation::None);
        let attn = packed_attention(&mut g, qkv, batch, n, d, heads, None);
        let proj = proj_l.apply(&mut g, attn, rows, Activation::None);
        g.push(Op::GateResidual(GateResidual { batch, tokens: n, dim: d, x: h, y: proj, gate: gate1 }));

        let a2 = g.temp([rows, d]);
        g.push(Op::LayerNormModulate(LayerNormModulate { batch, tokens: n, dim: d, eps: LN_EPS, x: h, shift: shift2, scale: scale2, out: a2 }));
        let mid = fc1.apply(&mut g, a2, rows, Activation::GeluTanh);
        let mlp = fc2.apply(&mut g, mid, rows, Activation::None);
        g.push(Op::GateResidual(GateResidual { batch, tokens: n, dim: d, x: h, y: mlp, gate: gate2 }));
    }

    // Final layer: (shift, scale) are the last 2D of the modulation row.
    let final_l = Linear::load(&mut g, w, "final_layer.linear", &[p * p * cfg.out_channels(), d], true)?;
    let base = cfg.depth * 6;
    let a = g.temp([rows, d]);
    g.push(Op::LayerNormModulate(LayerNormModulate {
        batch,
        tokens: n,
        dim: d,
        eps: LN_EPS,
        x: h,
        shift: chunk(base),
        scale: chunk(base + 1),
        out: a,
    }));
    let tokens = final_l.apply(&mut g, a, rows, Activation::None);
    let out = g.output("out", [batch, cfg.out_channels(), s, s]);
    let geom = PatchGeometry { batch, channels: cfg.out_channels(), height: s, width: s, patch: p };
    g.push(Op::Unpatchify(Unpatchify { geom, x: tokens, out }));
    g.finish()
}
