//! DiT (Peebles & Xie, arXiv 2212.09748) exactly as the official checkpoints compute it:
//! patch embedding + fixed position table, c = MLP(timestep features) + label embedding,
//! adaLN-Zero blocks, final adaLN + linear, official unpatchify order.
use crate::backend::{Activation, Add, GatedResidual, LayerNormModulate, Op, Unary};
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::backbone::{denoiser_sampling, Backbone, Forward, GraphIo};
use crate::models::embedders::Embedders;
use crate::models::layers::{packed_attention, Linear};
use crate::models::modulation::Modulation;
use crate::models::params::{HostParam, Params};
use crate::models::patch_config::{patch_config, PatchConfig};
use crate::sampling::recipe::{BackboneSampling, GuidanceForm, SamplerName};
use crate::sampling::NoiseSchedule;

const LN_EPS: f32 = 1e-6;

patch_config!(
    /// DiT's config (`PatchConfig`'s fields).
    DitConfig
);

impl DitConfig {
    /// "DiT-XL/2" (256 px, latent 32) or "DiT-XL/2-512" (latent 64): an ImageNet class-conditional
    /// latent model with learned sigma.
    pub fn preset(name: &str) -> Option<DitConfig> {
        PatchConfig::family(name.strip_prefix("DiT-")?).map(DitConfig)
    }

    pub fn preset_names() -> String {
        PatchConfig::family_names("DiT-")
    }
}

impl Backbone for DitConfig {
    fn arch(&self) -> &'static str {
        "dit"
    }

    fn validate(&self) -> std::result::Result<(), String> {
        self.check("dit", || self.param_shapes())
    }

    fn describe(&self) -> String {
        self.0.describe(&self.family_name("DiT"), "")
    }

    /// Every linear layer, plus QK^T and AV (2 N^2 D per block).
    fn macs_per_image(&self) -> f64 {
        let (n, d, h) = (self.tokens() as f64, self.hidden_size as f64, self.mlp_hidden() as f64);
        let block = n * (4.0 * d * d + 2.0 * d * h) + 2.0 * n * n * d + 6.0 * d * d;
        self.embed_and_head_macs() + self.depth as f64 * block + 2.0 * d * d
    }

    fn io(&self) -> GraphIo {
        self.0.io()
    }

    /// DiT's sample.py: DDPM, 250 steps, scale 4.0, on the linear schedule it was trained with.
    fn sampling(&self) -> Result<BackboneSampling> {
        denoiser_sampling(self, (SamplerName::Ddpm, 250, 4.0), NoiseSchedule::Linear, GuidanceForm::Dit)
    }

    fn load(&self, mut p: Params) -> Result<Box<dyn Forward + '_>> {
        let d = self.hidden_size;
        let embed = Embedders::load(&mut p, self)?;
        // Each block's adaLN modulation (6 vectors of D) and the final layer's (2) are gathered
        // into a few products (`Modulation`).
        let mut parts = Vec::with_capacity(self.depth + 1);
        let modulation = |p: &mut Params, vectors: usize| -> Result<(HostParam, HostParam, usize)> {
            Ok((p.host("adaLN_modulation.1.weight", &[vectors * d, d])?, p.host("adaLN_modulation.1.bias", &[vectors * d])?, vectors))
        };
        let mut blocks = Vec::with_capacity(self.depth);
        let mut bp = p.pp("blocks");
        for i in 0..self.depth {
            let mut b = bp.pp(i);
            blocks.push(DitBlock::load(&mut b, self)?);
            parts.push(modulation(&mut b, 6)?);
        }
        let mut f = p.pp("final_layer");
        let head = Linear::load(f.pp("linear"), &[self.patch_size.pow(2) * self.out_channels(), d], true)?;
        parts.push(modulation(&mut f, 2)?);
        let modulation = Modulation::gather(&mut p, parts, d);
        Ok(Box::new(Dit { cfg: self, embed, blocks, head, modulation }))
    }
}

/// A block's attention and MLP (its adaLN modulation is gathered with the others).
struct DitBlock {
    qkv: Linear,
    proj: Linear,
    fc1: Linear,
    fc2: Linear,
}

impl DitBlock {
    fn load(p: &mut Params, cfg: &PatchConfig) -> Result<DitBlock> {
        let (d, h) = (cfg.hidden_size, cfg.mlp_hidden());
        Ok(DitBlock {
            qkv: Linear::load(p.pp("attn.qkv"), &[3 * d, d], true)?,
            proj: Linear::load(p.pp("attn.proj"), &[d, d], true)?,
            fc1: Linear::load(p.pp("mlp.fc1"), &[h, d], true)?,
            fc2: Linear::load(p.pp("mlp.fc2"), &[d, h], true)?,
        })
    }
}

struct Dit<'a> {
    cfg: &'a DitConfig,
    embed: Embedders,
    blocks: Vec<DitBlock>,
    head: Linear,
    modulation: Modulation,
}

impl Forward for Dit<'_> {
    fn forward(&self, g: &mut GraphBuilder, batch: usize) {
        let cfg = self.cfg;
        let (d, n, heads) = (cfg.hidden_size, cfg.tokens(), cfg.num_heads);
        let rows = batch * n;
        let e = self.embed.apply(g, cfg, batch);
        let h = e.tokens;

        // c = MLP(timestep features) + label embedding; every adaLN consumes SiLU(c).
        let cond = e.time;
        g.push(Op::Add(Add { a: cond, b: e.label, out: cond }));
        g.push(Op::Unary(Unary { act: Activation::Silu, x: cond, out: cond }));

        // The modulation vectors of every block and of the final layer, a few GEMMs per step;
        // vector j of part i (block i, or the final layer at i = depth).
        let mods = self.modulation.apply(g, cond, batch);
        let chunk = |i: usize, j: usize| self.modulation.vector(&mods, batch, i, j);
        // LN-modulate of h, after adding the gated residual of the sublayer before it (the
        // adaLN-Zero update h += gate * f(...), fused into the norm that reads h next).
        let modulate = |g: &mut GraphBuilder, i: usize, first: usize, residual: Option<GatedResidual>| {
            let out = g.temp([rows, d]);
            let (shift, scale) = (chunk(i, first), chunk(i, first + 1));
            g.push(Op::LayerNormModulate(LayerNormModulate { batch, tokens: n, dim: d, eps: LN_EPS, x: h, residual, shift, scale, out }));
            out
        };

        let mut residual = None;
        for (i, block) in self.blocks.iter().enumerate() {
            // (shift, scale, gate) for attention, then for the MLP.
            let a = modulate(g, i, 0, residual);
            let qkv = block.qkv.apply(g, a, rows, Activation::None);
            let attn = packed_attention(g, qkv, batch, n, d, heads, None);
            let proj = block.proj.apply(g, attn, rows, Activation::None);

            let a = modulate(g, i, 3, Some(GatedResidual { y: proj, gate: chunk(i, 2) }));
            let mid = block.fc1.apply(g, a, rows, Activation::GeluTanh);
            let mlp = block.fc2.apply(g, mid, rows, Activation::None);
            residual = Some(GatedResidual { y: mlp, gate: chunk(i, 5) });
        }

        // Final layer: its (shift, scale), after the last block's MLP residual.
        let a = modulate(g, cfg.depth, 0, residual);
        let tokens = self.head.apply(g, a, rows, Activation::None);
        cfg.unpatchify_output(g, tokens, batch);
    }
}
